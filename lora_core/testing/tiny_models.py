"""Tiny random models with real architectures, saved in the layout of real checkpoints.

Tests and the benchmarks' CPU harness check load them through the same from-folder path a real
model takes (`--model FOLDER`), so nothing downloads. Recipes: shared/docs/reference/
verified-captioner-stack.md (section 3). Each builder imports torch/transformers/open_clip when
called; lorakit never imports this module on its own.

    from lora_core.testing.tiny_models import tiny_blip, tiny_clip
    lorakit caption imgs/ --captioner blip --model "$(python -c '...tiny_blip(...)')"
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lora_core.toolkit.sd_names import sai_unet_path

#: Words the tiny tokenizers know, so random captions read as words.
CORPUS = ["a neon city at night", "a cyberpunk street in the rain", "a photo of a cat", "glowing signs and fog",
          "question: what style is this? answer: cyberpunk", "a steampunk gear device", "a watercolor landscape"] * 20


def _seed(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


def tiny_blip(folder: Path, seed: int = 0) -> Path:
    """BLIP (ViT + BERT decoder) with a WordPiece vocabulary of about 100 tokens."""
    from transformers import BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor

    _seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = sorted({w for line in CORPUS for w in line.replace("?", "").replace(":", "").split()})
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = special + words + list(letters + "0123456789.,!?'-:") + ["##" + c for c in letters]
    vocab_file = folder / "vocab.txt"
    vocab_file.write_text("\n".join(dict.fromkeys(vocab)) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer(vocab=str(vocab_file))  # vocab=, not vocab_file= (silently ignored in v5)
    tokenizer.add_special_tokens({"bos_token": "[DEC]", "additional_special_tokens": ["[ENC]"]})
    tokenizer.model_max_length = 64
    processor = BlipProcessor(image_processor=BlipImageProcessor(size={"height": 64, "width": 64}),
                              tokenizer=tokenizer)
    config = BlipConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=32, encoder_hidden_size=32, intermediate_size=64,
                         projection_dim=32, num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=64,
                         bos_token_id=tokenizer.bos_token_id, pad_token_id=tokenizer.pad_token_id,
                         sep_token_id=tokenizer.sep_token_id, eos_token_id=tokenizer.sep_token_id),
        vision_config=dict(hidden_size=32, intermediate_size=64, projection_dim=32, num_hidden_layers=2,
                           num_attention_heads=2, image_size=64, patch_size=16),
        projection_dim=32, image_text_hidden_size=32)
    BlipForConditionalGeneration(config).eval().save_pretrained(folder)
    processor.save_pretrained(folder)
    vocab_file.unlink()  # the saved tokenizer.json is what loads
    return folder


def _byte_level_bpe(folder: Path, vocab_size: int = 400) -> tuple[dict[str, int], list[tuple[str, str]]]:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(CORPUS, trainer)
    bpe.model.save(str(folder), "tinybpe")
    vocab = json.loads((folder / "tinybpe-vocab.json").read_text(encoding="utf-8"))
    merges_text = (folder / "tinybpe-merges.txt").read_text(encoding="utf-8")
    merges = [tuple(line.split()) for line in merges_text.splitlines() if line and not line.startswith("#")]
    (folder / "tinybpe-vocab.json").unlink()
    (folder / "tinybpe-merges.txt").unlink()
    return vocab, merges  # type: ignore[return-value]


def _save_blip2(folder: Path, tokenizer: Any, text_config: dict[str, Any]) -> Path:
    from transformers import Blip2Config, Blip2ForConditionalGeneration, Blip2Processor, BlipImageProcessor

    processor = Blip2Processor(image_processor=BlipImageProcessor(size={"height": 64, "width": 64}),
                               tokenizer=tokenizer, num_query_tokens=4)
    config = Blip2Config(
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=64, patch_size=16),
        qformer_config=dict(vocab_size=128, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=64, encoder_hidden_size=32, cross_attention_frequency=1,
                            max_position_embeddings=64),
        text_config={**text_config, "vocab_size": len(processor.tokenizer)},
        num_query_tokens=4, image_token_index=processor.tokenizer.convert_tokens_to_ids("<image>"),
        image_text_hidden_size=32)
    Blip2ForConditionalGeneration(config).eval().save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def tiny_blip2(folder: Path, seed: int = 0) -> Path:
    """BLIP-2 with a tiny OPT language model and a byte-level BPE trained offline (OPT's special ids)."""
    from transformers import GPT2Tokenizer

    _seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    vocab, merges = _byte_level_bpe(folder)
    # merges as pairs, which GPT2Tokenizer reads (its annotation says strings)
    tokenizer = GPT2Tokenizer(vocab=vocab, merges=merges, bos_token="</s>", eos_token="</s>",  # type: ignore[arg-type]
                              unk_token="<unk>", pad_token="<pad>", add_bos_token=True)
    tokenizer.model_max_length = 128
    return _save_blip2(folder, tokenizer, dict(
        model_type="opt", hidden_size=32, word_embed_proj_dim=32, ffn_dim=64, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=128, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))


def tiny_blip2_t5(folder: Path, seed: int = 0) -> Path:
    """BLIP-2 with a tiny Flan-T5-shaped language model and a Unigram tokenizer trained offline."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import T5Tokenizer

    _seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    unigram = Tokenizer(models.Unigram())
    unigram.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(vocab_size=200, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>",
                                      show_progress=False)
    unigram.train_from_iterator(CORPUS, trainer)
    vocab = [tuple(v) for v in json.loads(unigram.to_str())["model"]["vocab"]]
    tokenizer = T5Tokenizer(vocab=vocab, extra_ids=0)
    tokenizer.model_max_length = 128
    return _save_blip2(folder, tokenizer, dict(
        model_type="t5", d_model=32, d_kv=16, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=2,
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0))


def tiny_clip(folder: Path, seed: int = 0) -> Path:
    """CLIP (transformers `CLIPModel`) with the real 49,408-token CLIP tokenizer, written offline."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    from lora_core.toolkit.clip_tokens import write_tokenizer_folder

    _seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = CLIPTokenizer.from_pretrained(write_tokenizer_folder(folder / "_tokenizer"))
    tokenizer.model_max_length = 77
    processor = CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 64},
                                                                 crop_size={"height": 64, "width": 64}),
                              tokenizer=tokenizer)
    config = CLIPConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         projection_dim=16),  # the eos id matters: text pooling picks the eos position
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=64, patch_size=16, projection_dim=16),
        projection_dim=16)
    CLIPModel(config).eval().save_pretrained(folder)
    processor.save_pretrained(folder)
    for leftover in (folder / "_tokenizer").iterdir():
        leftover.unlink()
    (folder / "_tokenizer").rmdir()
    return folder


#: A CoCa small enough for tests, keeping the real vocabulary so open_clip's bundled tokenizer works.
TINY_COCA_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16,
                   "attentional_pool": True, "attn_pooler_heads": 2, "attn_pooler_queries": 8, "output_tokens": True},
    "text_cfg": {"context_length": 76, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2, "embed_cls": True,
                 "output_tokens": True},
    "multimodal_cfg": {"context_length": 76, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2,
                       "attn_pooler_heads": 2},
    "custom_text": True,
}


def tiny_coca(folder: Path, seed: int = 0) -> Path:
    """An open_clip CoCa saved in the hub layout (open_clip_config.json + open_clip_model.safetensors),
    loadable with `local-dir:FOLDER` like a downloaded checkpoint."""
    import dataclasses

    import open_clip
    from open_clip.transform import PreprocessCfg
    from safetensors.torch import save_file

    _seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    model = open_clip.CoCa(embed_dim=TINY_COCA_CONFIG["embed_dim"],
                           multimodal_cfg=TINY_COCA_CONFIG["multimodal_cfg"],
                           text_cfg=TINY_COCA_CONFIG["text_cfg"], vision_cfg=TINY_COCA_CONFIG["vision_cfg"])
    # open_clip leaves the caption head's projection at zero until trained (every token equally
    # likely); random values make decoding choices real, as with a trained checkpoint.
    import torch

    torch.nn.init.normal_(model.text_decoder.text_projection, std=1.0)
    config = {"model_cfg": TINY_COCA_CONFIG, "preprocess_cfg": dataclasses.asdict(PreprocessCfg(size=64))}
    (folder / "open_clip_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "open_clip_model.safetensors"))
    return folder


def _clip_text_parts(folder: Path) -> tuple[Path, Any, Any]:
    """(vocabulary folder, the real CLIP tokenizer, a tiny CLIPTextConfig matching it)."""
    from transformers import CLIPTextConfig, CLIPTokenizer

    from lora_core.toolkit.clip_tokens import write_tokenizer_folder

    vocabulary = write_tokenizer_folder(folder / "_vocab")
    tokenizer = CLIPTokenizer.from_pretrained(vocabulary, model_max_length=77)
    config = CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                            num_attention_heads=4, max_position_embeddings=77, projection_dim=32,
                            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                            pad_token_id=tokenizer.pad_token_id)
    return vocabulary, tokenizer, config


def _save_pipeline(pipeline: Any, folder: Path, vocabulary: Path, tokenizers: tuple[str, ...] = ("tokenizer",)) -> Path:
    import shutil

    pipeline.save_pretrained(folder)
    for part in tokenizers:  # transformers 5 saves tokenizer.json only; keep the classic files too
        for name in ("vocab.json", "merges.txt"):
            shutil.copy(vocabulary / name, folder / part / name)
    shutil.rmtree(vocabulary)
    return folder


def _tiny_sd(folder: Path, seed: int, prediction_type: str, unet: dict[str, Any], vae_layers: int) -> Path:
    from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    _seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    vocabulary, tokenizer, text_config = _clip_text_parts(folder)
    vae = AutoencoderKL(latent_channels=4, sample_size=64, block_out_channels=(32, 32, 32, 32),
                        layers_per_block=vae_layers, down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32)  # 8x downsampling, like SD
    scheduler = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              steps_offset=1, prediction_type=prediction_type)
    pipeline = StableDiffusionPipeline(
        vae=vae, text_encoder=CLIPTextModel(text_config), tokenizer=tokenizer,
        unet=UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, cross_attention_dim=32,
                                  norm_num_groups=32, **unet),
        scheduler=scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    return _save_pipeline(pipeline, folder, vocabulary)


def tiny_sd(folder: Path, seed: int = 0, prediction_type: str = "epsilon") -> Path:
    """A Stable Diffusion 1.x-shaped pipeline (UNet, VAE, CLIP text encoder with the real CLIP
    tokenizer, DDPM scheduler) saved as a diffusers folder. `prediction_type="v_prediction"` gives
    an SD 2.x-style v-prediction model."""
    return _tiny_sd(folder, seed, prediction_type, vae_layers=1, unet=dict(
        layers_per_block=1, block_out_channels=(32, 64), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), attention_head_dim=(2, 4)))


def tiny_sd_topology(folder: Path, seed: int = 0) -> Path:
    """A tiny pipeline with SD 1.x's exact block layout (four levels, two layers per block, cross
    attention in the first three), small enough for tests, so it can be written as an original
    Stable Diffusion (LDM) single-file checkpoint with `save_ldm_checkpoint`."""
    return _tiny_sd(folder, seed, "epsilon", vae_layers=2, unet=dict(
        layers_per_block=2, block_out_channels=(32, 32, 64, 64),
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3, attention_head_dim=8))


def _tiny_sdxl(folder: Path, seed: int, unet: dict[str, Any], second_width: int, vae_layers: int) -> Path:
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    _seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    vocabulary, tokenizer, config = _clip_text_parts(folder)
    second = config.__class__(**{**config.to_dict(), "hidden_size": second_width, "projection_dim": second_width})
    unet_model = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, projection_class_embeddings_input_dim=6 * 8 + second_width,  # six time ids, and
        cross_attention_dim=config.hidden_size + second_width, norm_num_groups=32, **unet)  # the pooled embedding
    vae = AutoencoderKL(latent_channels=4, sample_size=64, block_out_channels=(32, 32, 32, 32),
                        layers_per_block=vae_layers, down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32, scaling_factor=0.13025)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       steps_offset=1, timestep_spacing="leading")
    pipeline = StableDiffusionXLPipeline(vae=vae, text_encoder=CLIPTextModel(config), text_encoder_2=(
        CLIPTextModelWithProjection(second)), tokenizer=tokenizer, tokenizer_2=tokenizer, unet=unet_model,
        scheduler=scheduler)
    return _save_pipeline(pipeline, folder, vocabulary, ("tokenizer", "tokenizer_2"))


def tiny_sdxl(folder: Path, seed: int = 0) -> Path:
    """An SDXL-shaped pipeline: UNet with text-time conditioning, two CLIP text encoders (the second
    with a projection, as OpenCLIP bigG), the real CLIP tokenizer for both, saved as a diffusers folder."""
    return _tiny_sdxl(folder, seed, second_width=32, vae_layers=1, unet=dict(
        layers_per_block=1, block_out_channels=(32, 64), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
        transformer_layers_per_block=(1, 2)))


def tiny_sdxl_topology(folder: Path, seed: int = 0) -> Path:
    """A tiny SDXL with SDXL's exact block layout (three levels, two layers per block, no attention
    in the first, several transformer layers deeper) and text encoders of different widths (as
    CLIP ViT-L and OpenCLIP bigG), so `save_ldm_checkpoint` can write it as an original single file."""
    return _tiny_sdxl(folder, seed, second_width=64, vae_layers=2, unet=dict(
        layers_per_block=2, block_out_channels=(32, 64, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4, 4),
        transformer_layers_per_block=(1, 2, 2)))


_RESNET_TO_LDM = (("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("time_emb_proj", "emb_layers.1"),
                  ("norm2", "out_layers.0"), ("conv2", "out_layers.3"), ("conv_shortcut", "skip_connection"))


def _unet_to_ldm(name: str, up_blocks_with_attention: set[int]) -> str:
    """A diffusers UNet parameter name in the original (LDM) layout, for SD 1.x's and SDXL's block
    layouts (two layers a level)."""
    renames = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
               "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2",
               "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
    head, _, rest = name.partition(".")
    for old, new in renames.items():
        if name.startswith(old + "."):
            return new + name[len(old):]
    parts = name.split(".")
    if "attentions" in parts[1:3]:
        return sai_unet_path(name, 2)  # a transformer: the mapping kohya's SDXL LoRA names use too
    if head == "mid_block":  # resnets
        index, tail = int(parts[2]), ".".join(parts[3:])
        return f"middle_block.{2 * index}.{_resnet(tail)}"
    block, kind = int(parts[1]), parts[2]
    if head == "down_blocks":
        if kind == "downsamplers":
            return f"input_blocks.{3 * (block + 1)}.0.op." + ".".join(parts[5:])
        layer, tail = int(parts[3]), ".".join(parts[4:])
        return f"input_blocks.{3 * block + layer + 1}.0.{_resnet(tail)}"
    if kind == "upsamplers":
        place = 2 if block in up_blocks_with_attention else 1  # after the resnet, and the attention if any
        return f"output_blocks.{3 * block + 2}.{place}." + ".".join(parts[4:])
    layer, tail = int(parts[3]), ".".join(parts[4:])
    return f"output_blocks.{3 * block + layer}.0.{_resnet(tail)}"


def _resnet(tail: str) -> str:
    for old, new in _RESNET_TO_LDM:
        if tail.startswith(old + "."):
            return new + tail[len(old):]
    return tail


def _vae_to_ldm(name: str, levels: int) -> str:
    parts = name.split(".")
    side = parts[0]  # encoder / decoder / quant_conv / post_quant_conv
    if side not in ("encoder", "decoder"):
        return name
    rest = ".".join(parts[1:])
    if rest.startswith("conv_norm_out."):
        return f"{side}.norm_out.{rest[len('conv_norm_out.'):]}"
    if rest.startswith("mid_block.resnets."):
        index, tail = int(parts[3]), ".".join(parts[4:])
        return f"{side}.mid.block_{index + 1}.{tail.replace('conv_shortcut', 'nin_shortcut')}"
    if rest.startswith("mid_block.attentions.0."):
        tail = ".".join(parts[4:])
        for old, new in (("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out")):
            if tail.startswith(old + "."):
                tail = new + tail[len(old):]
        return f"{side}.mid.attn_1.{tail}"
    if parts[1] in ("down_blocks", "up_blocks"):
        block = int(parts[2])
        level = block if side == "encoder" else levels - 1 - block  # LDM numbers decoder levels bottom-up
        group = "down" if side == "encoder" else "up"
        if parts[3] == "resnets":
            tail = ".".join(parts[5:]).replace("conv_shortcut", "nin_shortcut")
            return f"{side}.{group}.{level}.block.{parts[4]}.{tail}"
        sampler = "downsample" if side == "encoder" else "upsample"
        return f"{side}.{group}.{level}.{sampler}." + ".".join(parts[5:])
    return name


def save_ldm_checkpoint(folder: Path, path: Path) -> Path:
    """Write a diffusers SD 1.x or SDXL folder (of that model's block layout: `tiny_sd_topology`,
    `tiny_sdxl_topology`) as one original-layout `.safetensors` checkpoint, the kind A1111 and
    ComfyUI users download (tests of single-file loading)."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet")
    vae = AutoencoderKL.from_pretrained(folder, subfolder="vae")
    text = CLIPTextModel.from_pretrained(folder, subfolder="text_encoder")
    with_attention = {i for i, kind in enumerate(unet.config.up_block_types) if kind.startswith("CrossAttn")}
    tensors = {"model.diffusion_model." + _unet_to_ldm(name, with_attention): value
               for name, value in unet.state_dict().items()}
    levels = len(vae.config.down_block_types)
    for name, value in vae.state_dict().items():
        ldm = _vae_to_ldm(name, levels)
        if ".mid.attn_1." in ldm and value.ndim == 2:
            value = value[:, :, None, None]  # LDM's attention projections are 1x1 convolutions
        tensors["first_stage_model." + ldm] = value
    sdxl = (folder / "text_encoder_2").is_dir()
    first = "conditioner.embedders.0.transformer." if sdxl else "cond_stage_model.transformer."
    for name, value in _text_model_state(text).items():
        tensors[first + name] = value
    # What released checkpoints also carry and a loader must skip: CLIP's position-id buffer, the
    # EMA bookkeeping of the training run, OpenCLIP's logit scale.
    tensors[first + "text_model.embeddings.position_ids"] = torch.arange(text.config.max_position_embeddings)[None]
    tensors["model_ema.decay"], tensors["model_ema.num_updates"] = torch.tensor(0.9999), torch.tensor(470_000)
    if sdxl:
        second = CLIPTextModelWithProjection.from_pretrained(folder, subfolder="text_encoder_2")
        for name, value in _open_clip_layout(second).items():
            tensors["conditioner.embedders.1.model." + name] = value
        tensors["conditioner.embedders.1.model.logit_scale"] = torch.tensor(4.6052)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    return path


def _text_model_state(model: Any) -> dict[str, Any]:
    """A CLIP text model's weights named as transformers 4 did (`text_model.` first, which
    transformers 5 drops for CLIPTextModel); the projection, if any, keeps its own name."""
    return {name if name.startswith(("text_model.", "text_projection.")) else "text_model." + name: value
            for name, value in model.state_dict().items() if not name.endswith("position_ids")}


def _open_clip_layout(model: Any) -> dict[str, Any]:
    """A transformers CLIP text model with projection in OpenCLIP's layout (SDXL's second encoder):
    fused q/k/v, `resblocks`, and the projection as a matrix applied on the right."""
    import torch

    state = _text_model_state(model)
    out = {"token_embedding.weight": state.pop("text_model.embeddings.token_embedding.weight"),
           "positional_embedding": state.pop("text_model.embeddings.position_embedding.weight"),
           "ln_final.weight": state.pop("text_model.final_layer_norm.weight"),
           "ln_final.bias": state.pop("text_model.final_layer_norm.bias"),
           "text_projection": state.pop("text_projection.weight").T}
    renames = (("layer_norm1", "ln_1"), ("layer_norm2", "ln_2"), ("mlp.fc1", "mlp.c_fc"), ("mlp.fc2", "mlp.c_proj"),
               ("self_attn.out_proj", "attn.out_proj"))
    for layer in range(model.config.num_hidden_layers):
        old, new = f"text_model.encoder.layers.{layer}.", f"transformer.resblocks.{layer}."
        for kind in ("weight", "bias"):
            out[f"{new}attn.in_proj_{kind}"] = torch.cat([state.pop(f"{old}self_attn.{p}_proj.{kind}") for p in "qkv"])
        for name in [n for n in state if n.startswith(old)]:
            tail = name[len(old):]
            for before, after in renames:
                tail = tail.replace(before, after)
            out[new + tail] = state.pop(name)
    if state:
        raise ValueError(f"unexpected text encoder weights: {sorted(state)[:3]}")
    return out



def _bpe_tokenizer(folder: Path, specials: list[str], **tokens: Any) -> Any:
    """A fast byte-level BPE tokenizer trained offline, with the model family's special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab, merges = _byte_level_bpe(folder)
    bpe = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.add_special_tokens(specials)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, **tokens)


def _chat_template(image: str, start: str, end: str, assistant: str, prefix: str = "") -> str:
    """A chat template of the family's shape: images and text parts of each message, a generation prompt."""
    return (prefix + "{% for message in messages %}" + start + "{{ message['content'] is string and message['content'] "
            "or '' }}{% if message['content'] is not string %}{% for part in message['content'] %}"
            "{% if part['type'] == 'image' %}" + image + "{% elif part['type'] == 'text' %}{{ part['text'] }}"
            "{% endif %}{% endfor %}{% endif %}" + end + "{% endfor %}{% if add_generation_prompt %}" + assistant +
            "{% endif %}")


def tiny_qwen2_vl(folder: Path, seed: int = 0) -> Path:
    """Qwen2-VL (the Qwen2.5-VL / Qwen3-VL processing: dynamic-resolution patches merged 2x2, M-RoPE)
    with a byte-level BPE and Qwen's chat tokens; 56x56 pixels, so every image is 4 tokens."""
    from transformers import (
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    _seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                "<|image_pad|>", "<|video_pad|>"]
    tokenizer = _bpe_tokenizer(folder, specials, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    template = _chat_template("<|vision_start|><|image_pad|><|vision_end|>", "<|im_start|>{{ message['role'] }}\n",
                              "<|im_end|>\n", "<|im_start|>assistant\n")
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in specials}
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=56 * 56, patch_size=14, merge_size=2,
                                              temporal_patch_size=2),
        tokenizer=tokenizer, video_processor=Qwen2VLVideoProcessor(), chat_template=template)
    config = Qwen2VLConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256,
                         rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]}, eos_token_id=ids["<|im_end|>"],
                         pad_token_id=ids["<|endoftext|>"], bos_token_id=ids["<|endoftext|>"]),
        vision_config=dict(depth=2, embed_dim=32, hidden_size=32, num_heads=2, mlp_ratio=2, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2, in_channels=3),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    Qwen2VLForConditionalGeneration(config).eval().save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def tiny_llava(folder: Path, seed: int = 0) -> Path:
    """LLaVA (JoyCaption's architecture: a CLIP vision tower, a projector, a Llama) with Llama-3 chat
    tokens; 32x32 pixels in 16x16 patches, so every image is 4 tokens plus CLS."""
    from transformers import CLIPImageProcessor, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

    _seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    specials = ["<image>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|begin_of_text|>",
                "<|finetune_right_pad_id|>"]
    tokenizer = _bpe_tokenizer(folder, specials, eos_token="<|eot_id|>", pad_token="<|finetune_right_pad_id|>",
                               bos_token="<|begin_of_text|>")
    template = _chat_template("<image>\n", "<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n",
                              "<|eot_id|>", "<|start_header_id|>assistant<|end_header_id|>\n\n",
                              prefix="<|begin_of_text|>")
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in specials}
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=tokenizer, patch_size=16, vision_feature_select_strategy="full", chat_template=template,
        num_additional_image_tokens=1)
    config = LlavaConfig(
        vision_config=dict(model_type="clip_vision_model", hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=2, image_size=32, patch_size=16, projection_dim=32),
        text_config=dict(model_type="llama", vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                         max_position_embeddings=256, eos_token_id=ids["<|eot_id|>"],
                         pad_token_id=ids["<|finetune_right_pad_id|>"], bos_token_id=ids["<|begin_of_text|>"]),
        image_token_index=ids["<image>"], vision_feature_select_strategy="full", vision_feature_layer=-1)
    LlavaForConditionalGeneration(config).eval().save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def tiny_florence2(folder: Path, seed: int = 0) -> Path:
    """Florence-2 (a DaViT vision encoder and a BART encoder-decoder; task prompts such as
    `<MORE_DETAILED_CAPTION>`, location tokens) at 64x64 pixels, 65 image tokens."""
    from transformers import (
        BartTokenizer,
        CLIPImageProcessor,
        Florence2Config,
        Florence2ForConditionalGeneration,
        Florence2Processor,
    )

    _seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    vocab, merges = _byte_level_bpe(folder)
    vocab.setdefault("<mask>", len(vocab))
    tokenizer = BartTokenizer(vocab=vocab, merges=merges, bos_token="<s>", eos_token="</s>",  # type: ignore[arg-type]
                              unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
                              extra_special_tokens={"image_token": "<image>"})
    tokenizer.add_tokens([f"<loc_{i}>" for i in range(1000)] + ["<od>", "</od>", "<ocr>", "</ocr>", "<poly>",
                                                                 "</poly>", "<sep>"])
    tokenizer.model_max_length = 256
    processor = Florence2Processor(
        image_processor=CLIPImageProcessor(size={"height": 64, "width": 64}, crop_size={"height": 64, "width": 64},
                                           do_center_crop=False, image_seq_length=65),
        tokenizer=tokenizer)
    config = Florence2Config(
        vision_config=dict(depths=[1, 1], patch_size=[7, 3], patch_stride=[4, 2], patch_padding=[3, 1],
                           patch_prenorm=[False, True], embed_dim=[16, 32], num_heads=[2, 2], num_groups=[2, 2],
                           window_size=4, projection_dim=32, max_position_embeddings=16, max_temporal_embeddings=4),
        text_config=dict(model_type="bart", vocab_size=len(tokenizer), d_model=32, encoder_layers=1, decoder_layers=1,
                         encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                         max_position_embeddings=256, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         decoder_start_token_id=tokenizer.eos_token_id, forced_bos_token_id=tokenizer.bos_token_id),
        image_token_id=int(tokenizer.convert_tokens_to_ids("<image>")))  # type: ignore[arg-type]
    Florence2ForConditionalGeneration(config).eval().save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


BUILDERS = {"sd": tiny_sd, "sdxl": tiny_sdxl, "blip": tiny_blip, "blip2": tiny_blip2, "clip": tiny_clip,
            "coca": tiny_coca, "qwen2-vl": tiny_qwen2_vl, "llava": tiny_llava, "florence2": tiny_florence2}


def main(argv: list[str] | None = None) -> int:
    """`python -m lora_core.testing.tiny_models KIND FOLDER`: build a tiny random model offline (no hub),
    saved like the real one, to try `lorakit train` / `lorakit caption` end to end on a CPU.
    docs/offline-training.md walks through it."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m lora_core.testing.tiny_models", description=main.__doc__)
    parser.add_argument("kind", choices=sorted(BUILDERS))
    parser.add_argument("folder", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(BUILDERS[args.kind](args.folder, seed=args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
