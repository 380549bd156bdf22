#!/usr/bin/env bash
# Lays out the output of AWS's Inferentia2 SD 2.1 notebook
# (aws-neuron-samples/torch-neuronx/inference/hf_pretrained_sd2_512_inference.ipynb), or of its SDXL base notebook
# (hf_pretrained_sdxl_base_1024_inference.ipynb: COMPILE_DIR has text_encoder_2/model.pt), as a stable-diffusion-jvm model
# directory, without Python: the compiled .pt files are copied as they are (each carries its NEFF), the compiler's
# graph.neff beside each is copied too, and configs + tokenizer come from the Hugging Face snapshot the notebook used.
#
# usage: tools/model/aws_notebook_to_model.sh COMPILE_DIR HF_SNAPSHOT OUT
#   COMPILE_DIR  the notebook's COMPILER_WORKDIR_ROOT (sd2_compile_dir_512, sdxl_compile_dir_1024): <part>/model.pt
#                (+ graph.neff) per part
#   HF_SNAPSHOT  ~/.cache/huggingface/hub/models--stabilityai--stable-diffusion-2-1-base/snapshots/<revision>
#                (SDXL: models--stabilityai--stable-diffusion-xl-base-1.0)
#   OUT          the model directory to write (then: bin/sd info --model OUT)
set -euo pipefail
if [[ $# -ne 3 ]]; then
    sed -n '2,14p' "$0" >&2
    exit 2
fi
src="$1"; hf="$2"; out="$3"
parts=(text_encoder unet vae_decoder vae_post_quant_conv)
configs=(text_encoder/config.json)
dirs=(scheduler tokenizer unet vae text_encoder feature_extractor)
if [[ -f "$src/text_encoder_2/model.pt" ]]; then  # SDXL base: a second text encoder and tokenizer
    parts+=(text_encoder_2)
    configs+=(text_encoder_2/config.json tokenizer_2/vocab.json tokenizer_2/merges.txt)
    dirs+=(text_encoder_2 tokenizer_2)
fi
for p in "${parts[@]}"; do
    [[ -f "$src/$p/model.pt" ]] || { echo "missing $src/$p/model.pt (compile that part in the notebook first)" >&2; exit 1; }
done
for f in model_index.json scheduler/scheduler_config.json tokenizer/vocab.json tokenizer/merges.txt \
         unet/config.json vae/config.json "${configs[@]}"; do
    [[ -f "$hf/$f" ]] || { echo "missing $hf/$f (not a diffusers snapshot of the compiled model?)" >&2; exit 1; }
done
mkdir -p "$out/compiled_models"
for p in "${parts[@]}"; do
    cp "$src/$p/model.pt" "$out/compiled_models/$p.pt"
    # the newest NEFF the compiler wrote for this part, if the work directory is there
    neff=$(find "$src/$p" -name '*.neff' -type f -printf '%T@ %p\n' 2>/dev/null | sort -n | tail -1 | cut -d' ' -f2-)
    if [[ -n "$neff" ]]; then
        cp "$neff" "$out/compiled_models/$p.neff"
    fi
done
for d in "${dirs[@]}"; do
    if [[ -d "$hf/$d" ]]; then
        mkdir -p "$out/$d"
        # configs and tokenizer files only, never weights (cp -L: the snapshot holds symlinks into blobs/)
        find -L "$hf/$d" -maxdepth 1 -type f \( -name '*.json' -o -name '*.txt' \) -exec cp -L {} "$out/$d/" \;
    fi
done
cp -L "$hf/model_index.json" "$out/"
echo "wrote $out (check it with: bin/sd info --model $out)"
