"""`lorakit caption`: caption a folder of images with one or more captioner plugins.

The flow: list the images; skip those already captioned (`resume`); caption them in batches with
each captioner; if there are several, vote per image; post-process each caption with the lint
config's own fixes (style prefix, vague terms, trigger in front, separators), so auto-captions
start out conforming; write the output in chunks, each chunk atomically, so an interrupt loses at
most the chunk in flight; lint the result.

A captioner plugin registers `factory(model=None, device="auto", dtype="auto")` (plus its own
options, and `registry` if it takes one) returning a `lora_core.protocols.Captioner`:
`caption(items: Sequence[ImageItem], prompt: str | None = None) -> list[str]`. Model captioners
call `item.load()` for a PIL image; the manual one reads `item.name`. A captioner may also split
the work in two (`PreparingCaptioner`): `prepare(item)` (decode and preprocess one image: CPU
work, run in DataLoader workers with pinned memory) and `caption_prepared(prepared, prompt=None)`
(the model); the prepared batch is then reused for every prompt (template slot questions).

Under `accelerate launch` (WORLD_SIZE > 1) each process captions every n-th image into its own
shard file, and the first process merges the shards in the original order.

One module per job: items (the images), options, loading (captioner plugins), batches
(running one captioner), voting, template_filler, postprocess, writer, shards; this module
holds the flow that joins them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lora_core.captioning.batches import prepared_batches, run_captioner
from lora_core.captioning.items import ImageItem, list_images
from lora_core.captioning.loading import load_captioners, require_captioners
from lora_core.captioning.options import CaptionOptions, CaptionResult, parse_captioner_options
from lora_core.captioning.postprocess import postprocess
from lora_core.captioning.shards import Shard
from lora_core.captioning.template_filler import TemplateFiller
from lora_core.captioning.voting import VOTES, best_score, clip_vote, consensus, join_captions
from lora_core.captioning.writer import SHARDS_FOLDER, CaptionWriter
from lora_core.config import Config
from lora_core.errors import DatasetError, PluginError
from lora_core.plugins import Registry
from lora_core.toolkit.answers import clean_answer
from lora_core.toolkit.caption_context import CaptionContext, context_from_config, default_prompt, underscore_convention

__all__ = ["SHARDS_FOLDER", "VOTES", "CaptionContext", "CaptionOptions", "CaptionResult", "CaptionWriter", "ImageItem",
           "Shard", "TemplateFiller", "best_score", "caption_folder", "clean_answer", "clip_vote", "consensus",
           "context_from_config", "default_prompt", "join_captions", "list_images", "load_captioners",
           "parse_captioner_options", "postprocess", "prepared_batches", "require_captioners", "run_captioner",
           "underscore_convention"]


def caption_folder(
    folder: Path, options: CaptionOptions, config: Config, registry: Registry,
    progress: Callable[[int, int], None] | None = None,
) -> CaptionResult:
    """Caption every image of `folder` not yet captioned (with resume) and write the output."""
    if options.vote not in VOTES:
        raise PluginError(f"unknown vote {options.vote!r} ({', '.join(VOTES)})")
    require_captioners(options.captioners, registry)  # before any output is touched
    filler = TemplateFiller(config) if options.template else None
    if filler is not None and not any(registry.captioners[n].answers_questions for n in options.captioners):
        able = sorted(n for n, c in registry.captioners.items() if c.answers_questions)
        raise PluginError("--template needs a captioner that answers questions "
                          f"({', '.join(able) or 'none installed'})")
    if options.prompt is not None and not any(registry.captioners[n].takes_prompt for n in options.captioners):
        able = sorted(n for n, c in registry.captioners.items() if c.takes_prompt)
        raise PluginError(f"--prompt: none of the captioners ({', '.join(options.captioners)}) takes a prompt "
                          f"(those that do: {', '.join(able) or 'none installed'})")
    items = list_images(folder)
    shard = Shard.from_environment()
    writer = CaptionWriter(folder, options.output, options.overwrite, options.resume, options.caption_extension,
                           options.keep_candidates)
    if writer.sidecars and not (options.resume or options.overwrite):
        existing = next((item.name for item in items if writer.has_caption(item.name)), None)
        if existing is not None:
            raise DatasetError(f"{folder}: `{existing}` already has a caption sidecar: pass --resume to keep existing "
                               "captions and add the missing ones, or --overwrite to replace them")
    todo = [item for item in items if not (options.resume and writer.has_caption(item.name))]
    order = [item.name for item in items]
    main = writer
    if shard.world > 1:
        todo = todo[shard.rank::shard.world]
        shard.wait()  # every process has read the existing output before any shard is written
        if not writer.sidecars:
            writer = CaptionWriter(folder, options.output, options.overwrite, True, options.caption_extension,
                                   options.keep_candidates, shard=shard.name)
    context = context_from_config(config, writer.existing_captions(items))
    captioners = load_captioners(options.captioners, options, registry, context)
    names = [n for n, _ in captioners]
    human = [bool(getattr(captioner, "human_written", False)) for _, captioner in captioners]
    scorer = None
    if options.vote == "clip" and len(captioners) > 1:
        from lora_core.toolkit.clip_scoring import ClipScorer

        scorer = ClipScorer(options.clip_model, device=options.device, dtype=options.dtype)
    result = CaptionResult(written=0, skipped=len(items) - len(todo), output=main.path,
                           main_process=shard.rank == 0)
    # Each flush rewrites the CSV: at most ~50 of them, and never fewer than 64 images apart.
    chunk = max(64, options.batch_size, len(todo) // 50)
    done = 0
    for start in range(0, len(todo), chunk):
        part = todo[start:start + chunk]
        drafts: list[list[str]] = []
        for name, captioner in captioners:
            entry = registry.captioners[name]
            with registry.attributed(entry.plugin, f"captioner {name!r}"):
                if filler is not None and entry.answers_questions:
                    answers = run_captioner(captioner, part, filler.questions, options.batch_size, options.workers)
                    drafts.append([filler.fill(per_image) for per_image in zip(*answers)])
                else:
                    prompt = options.prompt if entry.takes_prompt else None
                    drafts.append(run_captioner(captioner, part, [prompt], options.batch_size,
                                                options.workers)[0])
        candidates = [[d[index] for d in drafts] for index in range(len(part))]
        if len(captioners) == 1:
            votes = [(0, [1.0]) for _ in part]
        elif options.vote == "join":  # every captioner's part, in the order given (tags, then a sentence)
            candidates = [c + [join_captions(c)] for c in candidates]
            votes = [(len(names), [1.0] * len(names)) for _ in part]
        elif scorer is not None:
            votes = [best_score(s) for s in clip_vote(scorer, part, candidates)]
        else:
            votes = [consensus(c) for c in candidates]
        chosen = [c[best] for c, (best, _) in zip(candidates, votes)]
        # A caption a person wrote (the `csv` captioner's) gets the safe fixes only: rewording it
        # ("machine" -> the set's phrase, a trigger put in front) is that person's decision.
        by_people = [best < len(human) and human[best] for best, _ in votes]
        finals = list(chosen)
        for written_by_people in (False, True):
            at = [i for i, flag in enumerate(by_people) if flag is written_by_people]
            if at:
                fixed = postprocess([chosen[i] for i in at], config, registry, unsafe=not written_by_people)
                for i, caption in zip(at, fixed):
                    finals[i] = caption
        chooser = [*names, "+".join(names)]  # the last: the joined caption of --vote join
        for item, options_for_item, (best, scores), final in zip(part, candidates, votes, finals):
            detail = {"chosen": chooser[best], "vote": options.vote,
                      "candidates": dict(zip(names, options_for_item)),
                      "scores": {n: round(s, 4) for n, s in zip(names, scores)}}
            writer.add(item.name, final, detail)
            result.chosen[item.name] = chooser[best]
        writer.flush(order)
        result.written += len(part)
        done += len(part)
        if progress is not None:
            progress(done, len(todo))
    if shard.world > 1:
        shard.wait()  # every shard is complete on disk
        if shard.rank == 0 and not main.sidecars:
            main.merge_shards()
            main.flush(order)
            main.remove_shards()
        shard.wait()
    elif not writer.sidecars and (not writer.path.exists() or writer.shards_folder.is_dir()):
        writer.flush(order)  # nothing to caption, or shards of an interrupted distributed run taken in
        writer.remove_shards()
    return result
