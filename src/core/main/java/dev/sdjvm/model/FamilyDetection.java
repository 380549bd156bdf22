package dev.sdjvm.model;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Which {@link ModelFamily} a model directory holds, from its own files (never from its name):
 * <ol>
 *   <li>{@code model_index.json} {@code _class_name}: an SDXL pipeline class means {@link ModelFamily#SDXL}; a class
 *       other than the Stable Diffusion and Latent Consistency ones means {@link ModelFamily#UNKNOWN};</li>
 *   <li>{@code unet/config.json}: {@code addition_embed_type: text_time} or {@code cross_attention_dim} 2048 means
 *       SDXL, another {@code addition_embed_type} UNKNOWN; {@code time_cond_proj_dim} means {@link ModelFamily#LCM};
 *       {@code cross_attention_dim} 768 means SD 1.x, 1024 SD 2.x (any other width, as the test fixtures have: the
 *       tokenizer's pad token, {@code !} for SD 2.x's OpenCLIP tokenizer and {@code <|endoftext|>} for SD 1.x's;
 *       without one the text encoder's {@code hidden_act}, {@code quick_gelu} for SD 1.x's CLIP, else SD 2.x);</li>
 *   <li>{@code scheduler/scheduler_config.json}: {@code timestep_spacing: trailing} on an Euler or Euler ancestral
 *       scheduler means a few-step {@link ModelFamily#TURBO} model; {@code prediction_type: v_prediction} on SD 2.x
 *       means {@link ModelFamily#SD2_V}.</li>
 * </ol>
 *
 * @param family           the family
 * @param evidence         the facts the decision rests on, in one line (shown by {@code sd info})
 * @param problem          for UNKNOWN: what is missing or unsupported; else null
 * @param timeCondProjDim  {@code unet/config.json} {@code time_cond_proj_dim} (the LCM guidance embedding's width),
 *                         or null
 * @param predictionType   the scheduler config's {@code prediction_type} ({@code epsilon} when absent)
 */
public record FamilyDetection(ModelFamily family, String evidence, String problem, Integer timeCondProjDim,
                              String predictionType) {

    /** {@code model_index.json} classes of the Stable Diffusion pipelines (text-to-image, image-to-image, inpainting). */
    static final Set<String> SD_PIPELINES = Set.of("StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline",
            "StableDiffusionInpaintPipeline", "OnnxStableDiffusionPipeline");
    /** {@code model_index.json} classes of the Latent Consistency Model pipelines. */
    static final Set<String> LCM_PIPELINES = Set.of("LatentConsistencyModelPipeline",
            "LatentConsistencyModelImg2ImgPipeline");

    /**
     * Decides the family.
     *
     * @param modelIndex  {@code model_index.json}, or null when the directory has none
     * @param unet        {@code unet/config.json}
     * @param scheduler   {@code scheduler/scheduler_config.json}
     * @param textEncoder {@code text_encoder/config.json}, or null when the directory has none
     * @param padToken    the tokenizer's pad token ({@code special_tokens_map.json}), or null when unknown
     * @return the family and why
     */
    public static FamilyDetection detect(JsonNode modelIndex, JsonNode unet, Map<String, Object> scheduler,
                                         JsonNode textEncoder, String padToken) {
        List<String> why = new ArrayList<>();
        String cls = modelIndex != null && modelIndex.path("_class_name").isTextual()
                ? modelIndex.get("_class_name").asText() : null;
        why.add(cls != null ? "model_index.json " + cls : "no model_index.json class");
        JsonNode cross = unet.get("cross_attention_dim");
        Integer crossDim = null;
        if (cross != null && cross.isIntegralNumber()) {
            crossDim = cross.intValue();
        } else if (cross != null && cross.isArray() && cross.size() > 0 && cross.get(0).isIntegralNumber()) {
            crossDim = cross.get(0).intValue();  // a per-block list (SDXL refiner style)
        }
        String addEmb = unet.path("addition_embed_type").isTextual() ? unet.get("addition_embed_type").asText() : null;
        JsonNode tc = unet.get("time_cond_proj_dim");
        Integer tcond = tc != null && tc.isIntegralNumber() && tc.intValue() > 0 ? tc.intValue() : null;
        Object p = scheduler.get("prediction_type");
        String pred = p instanceof String s ? s : "epsilon";
        Object sp = scheduler.get("timestep_spacing");
        String spacing = sp instanceof String s ? s : "leading";
        Object sc = scheduler.get("_class_name");
        String schedCls = sc instanceof String s ? s : "";
        why.add("unet cross_attention_dim " + (cross == null ? "absent" : cross.toString()));

        if (cls != null && cls.startsWith("StableDiffusionXL") || "text_time".equals(addEmb)
                || crossDim != null && crossDim == 2048) {
            if (addEmb != null) {
                why.add("unet addition_embed_type " + addEmb);
            }
            return new FamilyDetection(ModelFamily.SDXL, String.join("; ", why), null, tcond, pred);
        }
        if (cls != null && !SD_PIPELINES.contains(cls) && !LCM_PIPELINES.contains(cls)) {
            return unknown(why, "model_index.json names " + cls + ", a pipeline this library does not implement (it "
                    + "runs " + String.join(", ", sorted(SD_PIPELINES)) + " and " + String.join(", ",
                    sorted(LCM_PIPELINES)) + " models)", tcond, pred);
        }
        if (addEmb != null) {
            return unknown(why, "unet/config.json addition_embed_type '" + addEmb + "' is not supported (only SDXL's "
                    + "text_time, by the SDXL pipeline)", tcond, pred);
        }
        if (crossDim == null) {
            return unknown(why, "unet/config.json has no integer cross_attention_dim: not a text-conditioned Stable "
                    + "Diffusion UNet", tcond, pred);
        }
        if (tcond != null) {
            why.add("unet time_cond_proj_dim " + tcond + " (guidance embedding)");
            return new FamilyDetection(ModelFamily.LCM, String.join("; ", why), null, tcond, pred);
        }
        if (cls != null && LCM_PIPELINES.contains(cls)) {
            return unknown(why, "model_index.json names " + cls + " but unet/config.json has no time_cond_proj_dim: "
                    + "diffusers' LCM pipeline needs a UNet distilled with a guidance embedding (an LCM-LoRA model "
                    + "runs as StableDiffusionPipeline with scheduler lcm)", null, pred);
        }
        boolean sd1;
        if (crossDim == 768) {
            sd1 = true;
        } else if (crossDim == 1024) {
            sd1 = false;
        } else if ("!".equals(padToken) || "<|endoftext|>".equals(padToken)) {
            sd1 = "<|endoftext|>".equals(padToken);
            why.add("tokenizer pad_token " + padToken + " (" + (sd1 ? "SD 1.x" : "SD 2.x") + "-like)");
        } else {
            String act = textEncoder != null && textEncoder.path("hidden_act").isTextual()
                    ? textEncoder.get("hidden_act").asText() : null;
            sd1 = "quick_gelu".equals(act);
            why.add("text_encoder hidden_act " + (act == null ? "unknown" : act) + " (" + (sd1 ? "SD 1.x" : "SD 2.x")
                    + "-like)");
        }
        why.add("scheduler " + (schedCls.isEmpty() ? "" : schedCls + " ") + pred
                + (scheduler.containsKey("timestep_spacing") ? ", timestep_spacing " + spacing : ""));
        ModelFamily f;
        if ("trailing".equals(spacing) && (schedCls.equals("EulerAncestralDiscreteScheduler")
                || schedCls.equals("EulerDiscreteScheduler"))) {
            f = ModelFamily.TURBO;
        } else if (sd1) {
            f = ModelFamily.SD1;
        } else {
            f = "v_prediction".equals(pred) ? ModelFamily.SD2_V : ModelFamily.SD2;
        }
        return new FamilyDetection(f, String.join("; ", why), null, null, pred);
    }

    private static FamilyDetection unknown(List<String> why, String problem, Integer tcond, String pred) {
        return new FamilyDetection(ModelFamily.UNKNOWN, String.join("; ", why), problem, tcond, pred);
    }

    private static List<String> sorted(Set<String> s) {
        return s.stream().sorted().toList();
    }
}
