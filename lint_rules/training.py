"""LK7xx: training settings that make caption noise worse.

Observed guidance from the lorakit brief (not laws): many epochs on a small dataset memorise
wrong labels, a high learning rate locks early errors in, a low rank has no capacity to absorb
conflicting samples, and without a validation split nobody sees the loss rise. These rules read
the `[train]` table (only when the config file has one) and point at the line that sets the value.

The trainer plugin owns `[train]`: its keys, types and defaults are registered once, by the
trainer (lorakit_lora.settings); these rules only read the resolved values, so the pack can be
disabled (`-p no:training`) without making any key of `[train]` unknown.
"""

from __future__ import annotations

from collections.abc import Iterable

from lora_core import RuleOption, Severity
from lora_core.config import key_location
from lora_core.datasets.model import Dataset
from lora_core.rules import LintContext, Rule, RulePack
from lora_core.violations import Location, Violation

SMALL_DATASET = 100
#: The `[train]` keys these rules read (lorakit's trainer registers them; another trainer that owns
#: `[train]` without them is simply not checked).
READS = frozenset({"epochs", "learning-rate", "rank", "alpha", "validation-split", "early-stopping-patience"})


def _train(ctx: LintContext) -> dict | None:
    """`[train]` resolved (the trainer plugin owns the section and its defaults), or None when the
    config file does not set it or no loaded plugin provides it."""
    train = ctx.section("train") if ctx.has_section("train") else None
    return train if train is not None and train.keys() >= READS else None


def _where(ctx: LintContext, key: str) -> Location:
    return key_location(ctx.config_path, "train", key) or ctx.dataset.location


def _has_validation(train: dict) -> bool:
    return train["validation-split"] > 0 or train["early-stopping-patience"] > 0


class EpochsHigh(Rule):
    """## What it does
    Reports `[train] epochs` above 15; an error when the dataset has fewer than 100 images and no
    validation split.

    ## Why it matters
    With few images, many passes memorise every caption, wrong ones included: the loss keeps
    falling while the LoRA learns the labelling mistakes. A plateau around epoch 7 followed by a
    slight rise is the typical label-noise symptom.

    ## Example
    ```toml
    [train]
    epochs = 30
    ```

    ## Fix
    Use 15 or fewer, with a `validation-split` and `early-stopping-patience`.
    """

    code = "LK701"
    name = "epochs-high"
    summary = "[train] epochs above 15 (error for < 100 images without validation)"
    severity = Severity.WARNING
    options = (RuleOption("train.epochs", "passes over the dataset"),)

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        train = _train(ctx)
        if train is None or train["epochs"] <= 15:
            return
        images = len(dataset.records)
        epochs = train["epochs"]
        violation = self.at(_where(ctx, "epochs"), f"epochs = {epochs} (> 15) memorises caption mistakes; use <= 15 "
                            "with early stopping on a validation split", epochs=epochs, images=images)
        if images < SMALL_DATASET and not _has_validation(train):
            violation.severity = Severity.ERROR
            violation.message += f" (only {images} images and no validation split)"
        yield violation


class LearningRateHigh(Rule):
    """## What it does
    Reports `[train] learning-rate` above 3e-4.

    ## Why it matters
    A high learning rate locks early errors in fast: the first noisy captions the model sees
    shape the adapter before the rest of the data can correct them.

    ## Example
    ```toml
    [train]
    learning-rate = 1e-3
    ```

    ## Fix
    Use 1e-4 to 2e-4.
    """

    code = "LK702"
    name = "learning-rate-high"
    summary = "[train] learning-rate above 3e-4"
    severity = Severity.WARNING
    options = (RuleOption("train.learning-rate", "optimizer learning rate"),)

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        train = _train(ctx)
        if train is None or train["learning-rate"] <= 3e-4:
            return
        rate = train["learning-rate"]
        yield self.at(_where(ctx, "learning-rate"), f"learning-rate = {rate:g} (> 3e-4) locks early caption errors "
                      "in; use 1e-4 .. 2e-4", learning_rate=rate)


class RankLow(Rule):
    """## What it does
    Reports `[train] rank` below 8.

    ## Why it matters
    A low-rank adapter has no capacity to absorb conflicting samples: instead of learning the
    style plus a few outliers, it averages everything.

    ## Example
    ```toml
    [train]
    rank = 4
    ```

    ## Fix
    Use 8 or more; 16 for complex styles.
    """

    code = "LK703"
    name = "rank-low"
    summary = "LoRA rank below 8"
    severity = Severity.WARNING
    options = (RuleOption("train.rank", "LoRA rank"),)

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        train = _train(ctx)
        if train is None or train["rank"] >= 8:
            return
        yield self.at(_where(ctx, "rank"), f"rank = {train['rank']} (< 8) cannot absorb conflicting samples; use 8+, "
                      "16 for complex styles", rank=train["rank"])


class NoValidation(Rule):
    """## What it does
    Reports more than 10 epochs with neither `validation-split` nor `early-stopping-patience`.

    ## Why it matters
    Without validation loss nobody sees the plateau-then-rise that signals memorised label noise;
    training simply runs to the last epoch.

    ## Example
    ```toml
    [train]
    epochs = 12
    ```

    ## Fix
    Set `validation-split = 0.1` and `early-stopping-patience = 2`.
    """

    code = "LK704"
    name = "no-validation"
    summary = "More than 10 epochs without a validation split or early stopping"
    severity = Severity.WARNING
    options = (RuleOption("train.validation-split", "share held out"),
               RuleOption("train.early-stopping-patience", "epochs without improvement before stopping"))

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        train = _train(ctx)
        if train is None or train["epochs"] <= 10 or _has_validation(train):
            return
        yield self.at(_where(ctx, "epochs"), f"epochs = {train['epochs']} with no validation-split or "
                      "early-stopping-patience: label-noise overfitting goes unseen")


class AlphaRankRatio(Rule):
    """## What it does
    Reports `alpha` outside `[rank/4, 2*rank]`.

    ## Why it matters
    The LoRA update is scaled by alpha/rank. Far below 1/4 the adapter barely trains at the
    configured learning rate; above 2 it behaves like a much higher learning rate (see LK702).

    ## Example
    ```toml
    [train]
    rank = 16
    alpha = 128
    ```

    ## Fix
    Use alpha between `rank/4` and `2*rank`; `alpha = rank` is a common default.
    """

    code = "LK705"
    name = "alpha-rank-ratio"
    summary = "alpha outside [rank/4, 2*rank]"
    severity = Severity.INFO
    options = (RuleOption("train.alpha", "LoRA alpha"), RuleOption("train.rank", "LoRA rank"))

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        train = _train(ctx)
        if train is None:
            return
        rank, alpha = train["rank"], train["alpha"]
        if rank / 4 <= alpha <= 2 * rank:
            return
        yield self.at(_where(ctx, "alpha"), f"alpha = {alpha:g} with rank = {rank}: scale {alpha / rank:g} is outside "
                      f"[0.25, 2]; use alpha between {rank / 4:g} and {2 * rank:g}", scale=alpha / rank)


RULES = (EpochsHigh, LearningRateHigh, RankLow, NoValidation, AlphaRankRatio)

plugin = RulePack(RULES)
