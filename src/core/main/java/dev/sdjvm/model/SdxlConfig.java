package dev.sdjvm.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdjvm.errors.ModelLoadException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/**
 * What an SDXL model ({@code model_index.json} {@code "_class_name": "StableDiffusionXLPipeline"}) has beyond the
 * SD 2.x shape, as diffusers' {@code StableDiffusionXLPipeline} reads it: the second tokenizer and text encoder, the
 * pipeline's {@code force_zeros_for_empty_prompt}, the UNet's added conditioning ({@code addition_embed_type}
 * {@code text_time}: the pooled text embedding and six time ids) and the VAE's {@code force_upcast}.
 *
 * <p>{@link #detect} is the one place that decides whether a model directory is SDXL; {@link ModelDirectory#open}
 * calls it, so a broken SDXL directory fails the load naming the file.
 *
 * @param tokenizer2Dir            {@code tokenizer_2/} (OpenCLIP's tokenizer: pads with {@code !}, id 0)
 * @param forceZerosForEmptyPrompt {@code model_index.json} {@code force_zeros_for_empty_prompt} (diffusers' default
 *                                 true): under guidance and without a negative prompt the negative embeddings are zeros
 * @param forceUpcast              {@code vae/config.json} {@code force_upcast} (default true): the VAE decodes in float32
 * @param textEmbedsDim            {@code text_encoder_2/config.json} {@code projection_dim} (1280 for SDXL base), or
 *                                 null when that config is absent (then the encoder's output decides)
 * @param additionTimeEmbedDim     {@code unet/config.json} {@code addition_time_embed_dim} (256), or null
 * @param crossAttentionDim        {@code unet/config.json} {@code cross_attention_dim}: the two encoders' hidden sizes
 *                                 together (768 + 1280 = 2048 for SDXL base), or null
 */
public record SdxlConfig(Path tokenizer2Dir, boolean forceZerosForEmptyPrompt, boolean forceUpcast, Integer textEmbedsDim,
                         Integer additionTimeEmbedDim, Integer crossAttentionDim) {
    /** diffusers' pipeline class of SDXL text-to-image ({@code model_index.json} {@code _class_name}). */
    public static final String PIPELINE_CLASS = "StableDiffusionXLPipeline";
    /** The time ids per row: original size (h, w), crop top-left (y, x), target size (h, w). */
    public static final int TIME_IDS = 6;

    /**
     * diffusers' SDXL pipeline classes a base model is saved with ({@code model_index.json} {@code _class_name}): the
     * text-to-image one, and the image-to-image and inpainting ones (e.g. an SDXL inpainting checkpoint). All three
     * load the same parts; the library runs every task on any of them.
     */
    public static final java.util.List<String> PIPELINE_CLASSES = java.util.List.of(PIPELINE_CLASS,
            "StableDiffusionXLImg2ImgPipeline", "StableDiffusionXLInpaintPipeline");

    /**
     * {@return true when {@code model_index.json} names one of {@link #PIPELINE_CLASSES}}
     *
     * @param root a model directory
     */
    public static boolean isSdxl(Path root) {
        JsonNode index = readOptional(root.resolve("model_index.json"));
        return index != null && PIPELINE_CLASSES.contains(index.path("_class_name").asText(""));
    }

    /**
     * The SDXL parts of a model directory, checked.
     *
     * @param dir a model directory
     * @return its SDXL configuration, or empty for an SD 2.x model
     * @throws ModelLoadException for an SDXL model without {@code text_encoder_2}, {@code tokenizer_2/}, or with configs
     *                            that disagree; and for a UNet with SDXL's added conditioning in a model that is not SDXL
     */
    public static Optional<SdxlConfig> detect(ModelDirectory dir) {
        Path root = dir.root();
        Path unetFile = root.resolve("unet").resolve("config.json");
        JsonNode unet = readOptional(unetFile);
        String addition = unet == null ? null : unet.path("addition_embed_type").asText(null);
        if (!isSdxl(root)) {
            if ("text_time".equals(addition)) {
                throw new ModelLoadException(unetFile, "addition_embed_type text_time is SDXL's UNet, but "
                        + root.resolve("model_index.json") + " does not name an SDXL pipeline " + PIPELINE_CLASSES);
            }
            if (dir.has(ArtifactRole.TEXT_ENCODER_2)) {
                throw new ModelLoadException(dir.artifact(ArtifactRole.TEXT_ENCODER_2), "a second text encoder is "
                        + "SDXL's, but " + root.resolve("model_index.json") + " does not name an SDXL pipeline "
                        + PIPELINE_CLASSES);
            }
            return Optional.empty();
        }
        Path index = root.resolve("model_index.json");
        JsonNode indexNode = readOptional(index);
        if (indexNode.path("requires_aesthetics_score").asBoolean(false)) {
            throw new ModelLoadException(index, "requires_aesthetics_score is true: this is an SDXL refiner (its UNet's "
                    + "time ids carry an aesthetic score, and it has only text_encoder_2), which is not supported; "
                    + "SDXL base models are");
        }
        if (!dir.has(ArtifactRole.TEXT_ENCODER_2)) {
            throw new ModelLoadException(root.resolve("compiled_models").resolve(ArtifactRole.TEXT_ENCODER_2.fileName()),
                    "text_encoder_2 artifact not found (nor " + root.resolve(ArtifactRole.TEXT_ENCODER_2.sampleFileName())
                    + "): an SDXL model has two text encoders");
        }
        if (addition != null && !"text_time".equals(addition)) {
            throw new ModelLoadException(unetFile, "addition_embed_type must be text_time for " + PIPELINE_CLASS
                    + ", got " + addition);
        }
        Path tok2 = root.resolve("tokenizer_2");
        for (String f : new String[] {"vocab.json", "merges.txt"}) {
            if (!Files.isRegularFile(tok2.resolve(f))) {
                throw new ModelLoadException(tok2.resolve(f), "tokenizer file not found (an SDXL model has tokenizer_2/)");
            }
        }
        JsonNode idx = readOptional(index);
        JsonNode fz = idx.get("force_zeros_for_empty_prompt");
        if (fz != null && !fz.isNull() && !fz.isBoolean()) {
            throw new ModelLoadException(index, "force_zeros_for_empty_prompt must be true or false, got " + fz);
        }
        boolean forceZeros = fz == null || fz.isNull() || fz.booleanValue();

        Path vaeFile = root.resolve("vae").resolve("config.json");
        JsonNode vae = readOptional(vaeFile);
        boolean upcast = true;
        if (vae != null) {
            JsonNode fu = vae.get("force_upcast");
            upcast = fu == null || fu.isNull() || fu.asBoolean(true);
            for (String k : new String[] {"latents_mean", "latents_std"}) {
                if (vae.hasNonNull(k)) {
                    throw new ModelLoadException(vaeFile, k + " is set: decoding with latents_mean/latents_std is not "
                            + "supported (SDXL base's VAE has neither)");
                }
            }
        }
        Path te2File = root.resolve("text_encoder_2").resolve("config.json");
        JsonNode te2 = readOptional(te2File);
        Integer proj = te2 != null && te2.path("projection_dim").canConvertToInt() && te2.path("projection_dim").isInt()
                ? te2.get("projection_dim").intValue() : null;
        Integer timeDim = intOrNull(unet, "addition_time_embed_dim");
        Integer addIn = intOrNull(unet, "projection_class_embeddings_input_dim");
        if (proj != null && timeDim != null && addIn != null && timeDim * TIME_IDS + proj != addIn) {
            // diffusers' _get_add_time_ids raises the same mismatch
            throw new ModelLoadException(unetFile, "the UNet expects an added time embedding vector of length " + addIn
                    + " (projection_class_embeddings_input_dim), but " + TIME_IDS + " time ids x addition_time_embed_dim "
                    + timeDim + " + text_encoder_2 projection_dim " + proj + " = " + (timeDim * TIME_IDS + proj));
        }
        return Optional.of(new SdxlConfig(tok2, forceZeros, upcast, proj, timeDim, intOrNull(unet, "cross_attention_dim")));
    }

    private static Integer intOrNull(JsonNode n, String key) {
        if (n == null) {
            return null;
        }
        JsonNode v = n.get(key);
        return v != null && v.isInt() ? v.intValue() : null;
    }

    private static JsonNode readOptional(Path file) {
        if (!Files.isRegularFile(file)) {
            return null;
        }
        try {
            JsonNode n = new ObjectMapper().readTree(Files.readAllBytes(file));
            if (n == null || !n.isObject()) {
                throw new ModelLoadException(file, "not a JSON object");
            }
            return n;
        } catch (IOException e) {
            throw new ModelLoadException(file, "invalid JSON: " + e.getMessage(), e);
        }
    }
}
