package dev.sdjvm.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * {@link FamilyDetection} on the config keys of the published models (model_index.json _class_name, the UNet's
 * cross_attention_dim / addition_embed_type / time_cond_proj_dim, the scheduler's prediction_type and
 * timestep_spacing, the text encoder's hidden_act).
 */
class FamilyDetectionTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    private static JsonNode json(String s) {
        try {
            return JSON.readTree(s.replace('\'', '"'));
        } catch (Exception e) {
            throw new IllegalArgumentException(e);
        }
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> map(String s) {
        return JSON.convertValue(json(s), LinkedHashMap.class);
    }

    private static final String PNDM = "{'_class_name': 'PNDMScheduler', 'steps_offset': 1}";
    private static final String SD = "{'_class_name': 'StableDiffusionPipeline'}";

    private static FamilyDetection detect(String index, String unet, String sched, String te) {
        return detect(index, unet, sched, te, null);
    }

    private static FamilyDetection detect(String index, String unet, String sched, String te, String pad) {
        return FamilyDetection.detect(index == null ? null : json(index), json(unet), map(sched),
                te == null ? null : json(te), pad);
    }

    @Test
    void publishedShapes() {
        // runwayml/stable-diffusion-v1-5
        assertEquals(ModelFamily.SD1, detect(SD, "{'cross_attention_dim': 768, 'sample_size': 64}", PNDM, null).family());
        // stabilityai/stable-diffusion-2-1-base
        assertEquals(ModelFamily.SD2, detect(SD, "{'cross_attention_dim': 1024, 'sample_size': 64}", PNDM, null).family());
        // stabilityai/stable-diffusion-2-1 (768, v-prediction)
        FamilyDetection v = detect(SD, "{'cross_attention_dim': 1024, 'sample_size': 96}",
                "{'_class_name': 'DDIMScheduler', 'prediction_type': 'v_prediction'}", null);
        assertEquals(ModelFamily.SD2_V, v.family());
        assertEquals("v_prediction", v.predictionType());
        assertTrue(v.evidence().contains("v_prediction"), v.evidence());
        // SimianLuo/LCM_Dreamshaper_v7
        FamilyDetection lcm = detect("{'_class_name': 'LatentConsistencyModelPipeline'}",
                "{'cross_attention_dim': 768, 'time_cond_proj_dim': 256}", "{'_class_name': 'LCMScheduler'}", null);
        assertEquals(ModelFamily.LCM, lcm.family());
        assertEquals(256, lcm.timeCondProjDim());
        assertNull(lcm.problem());
        // a few-step model: trailing Euler (ancestral) timesteps
        assertEquals(ModelFamily.TURBO, detect(SD, "{'cross_attention_dim': 1024}",
                "{'_class_name': 'EulerAncestralDiscreteScheduler', 'timestep_spacing': 'trailing'}", null).family());
        assertEquals(ModelFamily.TURBO, detect(SD, "{'cross_attention_dim': 1024}",
                "{'_class_name': 'EulerDiscreteScheduler', 'timestep_spacing': 'trailing'}", null).family());
        // trailing DDIM is not taken for a few-step model
        assertEquals(ModelFamily.SD2, detect(SD, "{'cross_attention_dim': 1024}",
                "{'_class_name': 'DDIMScheduler', 'timestep_spacing': 'trailing'}", null).family());
    }

    @Test
    void sdxlIsRecognized() {
        FamilyDetection x = detect("{'_class_name': 'StableDiffusionXLPipeline'}",
                "{'cross_attention_dim': 2048, 'addition_embed_type': 'text_time'}", "{'_class_name': "
                        + "'EulerDiscreteScheduler'}", null);
        assertEquals(ModelFamily.SDXL, x.family());
        assertNull(x.problem(), "SDXL has its pipeline");
        // from the UNet alone, without a model_index.json
        assertEquals(ModelFamily.SDXL, detect(null, "{'cross_attention_dim': 2048, 'addition_embed_type': 'text_time'}",
                PNDM, null).family());
    }

    @Test
    void unknownNamesWhatIsUnsupported() {
        FamilyDetection f = detect("{'_class_name': 'StableDiffusionUpscalePipeline'}", "{'cross_attention_dim': 1024}",
                PNDM, null);
        assertEquals(ModelFamily.UNKNOWN, f.family());
        assertTrue(f.problem().contains("StableDiffusionUpscalePipeline"), f.problem());
        f = detect(SD, "{'cross_attention_dim': 1024, 'addition_embed_type': 'image'}", PNDM, null);
        assertEquals(ModelFamily.UNKNOWN, f.family());
        assertTrue(f.problem().contains("addition_embed_type 'image'"), f.problem());
        f = detect(SD, "{'sample_size': 64}", PNDM, null);
        assertEquals(ModelFamily.UNKNOWN, f.family());
        assertTrue(f.problem().contains("cross_attention_dim"), f.problem());
        f = detect("{'_class_name': 'LatentConsistencyModelPipeline'}", "{'cross_attention_dim': 768}", PNDM, null);
        assertEquals(ModelFamily.UNKNOWN, f.family());
        assertTrue(f.problem().contains("time_cond_proj_dim"), f.problem());
    }

    @Test
    void nonStandardWidthsFallBackToTheTextEncoder() {
        FamilyDetection f = detect(SD, "{'cross_attention_dim': 16}", PNDM, "{'hidden_act': 'quick_gelu'}");
        assertEquals(ModelFamily.SD1, f.family());
        assertTrue(f.evidence().contains("quick_gelu"), f.evidence());
        assertEquals(ModelFamily.SD2, detect(SD, "{'cross_attention_dim': 16}", PNDM, "{'hidden_act': 'gelu'}").family());
        // the tokenizer's pad token comes first (diffusers' tiny test model: quick_gelu with SD 2.x's "!" padding)
        assertEquals(ModelFamily.SD2, detect(SD, "{'cross_attention_dim': 16}", PNDM, "{'hidden_act': 'quick_gelu'}", "!")
                .family());
        assertEquals(ModelFamily.SD1, detect(SD, "{'cross_attention_dim': 16}", PNDM, "{'hidden_act': 'gelu'}",
                "<|endoftext|>").family());
    }
}
