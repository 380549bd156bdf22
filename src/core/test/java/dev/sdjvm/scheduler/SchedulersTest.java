package dev.sdjvm.scheduler;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdjvm.errors.InvalidRequestException;
import dev.sdjvm.errors.ModelLoadException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SchedulersTest {
    static final String SD21_BASE = "{\"_class_name\": \"PNDMScheduler\", \"_diffusers_version\": \"0.10.0.dev0\","
            + " \"beta_end\": 0.012, \"beta_schedule\": \"scaled_linear\", \"beta_start\": 0.00085,"
            + " \"clip_sample\": false, \"num_train_timesteps\": 1000, \"prediction_type\": \"epsilon\","
            + " \"set_alpha_to_one\": false, \"skip_prk_steps\": true, \"steps_offset\": 1, \"trained_betas\": null}";

    @Test
    void readConfigAndFromConfigUseClassName(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("scheduler_config.json");
        Files.writeString(f, SD21_BASE);
        Map<String, Object> cfg = Schedulers.readConfig(f);
        Scheduler s = Schedulers.fromConfig(cfg, Map.of());
        PNDMScheduler p = assertInstanceOf(PNDMScheduler.class, s);
        assertTrue(p.config().skipPrkSteps());
        assertEquals(1, p.config().stepsOffset());
        assertEquals("scaled_linear", p.config().betaSchedule());
    }

    @Test
    void readConfigAcceptsPythonInfinity(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("scheduler_config.json");
        Files.writeString(f, "{\"_class_name\": \"DPMSolverMultistepScheduler\", \"lambda_min_clipped\": -Infinity,"
                + " \"use_karras_sigmas\": true}");
        DPMSolverMultistepScheduler s = assertInstanceOf(DPMSolverMultistepScheduler.class,
                Schedulers.fromConfig(Schedulers.readConfig(f), Map.of()));
        assertEquals(Double.NEGATIVE_INFINITY, s.config().lambdaMinClipped());
        assertTrue(s.config().useKarrasSigmas());
    }

    @Test
    void readConfigErrorsNameTheFile(@TempDir Path dir) throws IOException {
        Path missing = dir.resolve("nope.json");
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> Schedulers.readConfig(missing));
        assertEquals(missing, e.file());
        assertTrue(e.getMessage().contains("nope.json"));
        Path bad = dir.resolve("bad.json");
        Files.writeString(bad, "{\"a\": ");
        e = assertThrows(ModelLoadException.class, () -> Schedulers.readConfig(bad));
        assertTrue(e.getMessage().contains("bad.json"));
        Path arr = dir.resolve("arr.json");
        Files.writeString(arr, "[1, 2]");
        assertThrows(ModelLoadException.class, () -> Schedulers.readConfig(arr));
    }

    @Test
    void createByAliasAppliesPresetAndOverridesWin() {
        Map<String, Object> base = RefCases.baseConfig(RefCases.caseNamed("dpm_eps_20"));
        DPMSolverMultistepScheduler k = assertInstanceOf(DPMSolverMultistepScheduler.class,
                Schedulers.create("DPM++2M-Karras", base, Map.of()));
        assertTrue(k.config().useKarrasSigmas());
        assertEquals("scaled_linear", k.config().betaSchedule()); // from the model config
        DPMSolverMultistepScheduler o = assertInstanceOf(DPMSolverMultistepScheduler.class,
                Schedulers.create("dpm++2m-karras", base, Map.of("use_karras_sigmas", false)));
        assertEquals(false, o.config().useKarrasSigmas());
        DPMSolverMultistepScheduler sde = assertInstanceOf(DPMSolverMultistepScheduler.class,
                Schedulers.create("dpm++2m-sde-karras", base, Map.of()));
        assertEquals("sde-dpmsolver++", sde.config().algorithmType());
        assertInstanceOf(EulerDiscreteScheduler.class, Schedulers.create("euler", base, null));
        assertInstanceOf(EulerAncestralDiscreteScheduler.class, Schedulers.create("EULER_A", base, null));
        assertInstanceOf(DDIMScheduler.class, Schedulers.create("ddim", base, null));
        assertInstanceOf(PNDMScheduler.class, Schedulers.create("pndm", base, null));
        assertInstanceOf(LMSDiscreteScheduler.class, Schedulers.create("lms", base, null));
        assertInstanceOf(UniPCMultistepScheduler.class, Schedulers.create("unipc", base, null));
        assertInstanceOf(DDIMScheduler.class, Schedulers.create("ddimscheduler", base, null));
    }

    @Test
    void unknownNameListsValidNames() {
        InvalidRequestException e = assertThrows(InvalidRequestException.class,
                () -> Schedulers.create("heun", Map.of(), Map.of()));
        assertEquals("scheduler", e.field());
        assertTrue(e.getMessage().contains("dpm++2m-karras"), e.getMessage());
        assertTrue(Schedulers.names().contains("DPMSolverMultistepScheduler"));
    }

    @Test
    void fromConfigNeedsAKnownClassName() {
        SchedulerConfigException e = assertThrows(SchedulerConfigException.class,
                () -> Schedulers.fromConfig(Map.of("_class_name", "HeunDiscreteScheduler"), Map.of()));
        assertEquals("_class_name", e.field());
        e = assertThrows(SchedulerConfigException.class, () -> Schedulers.fromConfig(Map.of(), Map.of()));
        assertEquals("_class_name", e.field());
    }

    @Test
    void typeErrorsNameTheKey() {
        SchedulerConfigException e = assertThrows(SchedulerConfigException.class,
                () -> Schedulers.create("euler", Map.of("num_train_timesteps", "many"), Map.of()));
        assertEquals("num_train_timesteps", e.field());
        e = assertThrows(SchedulerConfigException.class,
                () -> Schedulers.create("ddim", Map.of("steps_offset", 1.5), Map.of()));
        assertEquals("steps_offset", e.field());
    }

    @Test
    @SuppressWarnings("unchecked")
    void acceptsAConfigParsedByTheCallersJsonLibraryAsAMap() throws IOException {
        // the API takes no Jackson type: a caller with its own JSON tree converts it to a map of plain values
        Map<String, Object> tree = new com.fasterxml.jackson.databind.ObjectMapper().readValue(SD21_BASE, Map.class);
        assertInstanceOf(PNDMScheduler.class, Schedulers.fromConfig(tree, Map.of()));
        DPMSolverMultistepScheduler d = assertInstanceOf(DPMSolverMultistepScheduler.class,
                Schedulers.create("dpm++2m", tree, Map.of("solver_order", 3)));
        assertEquals(3, d.config().solverOrder());
        assertEquals(0.00085, d.config().betaStart());
    }

    @Test
    void trainedBetasListIsHonoured() {
        float[] lin = BetaSchedules.betas("linear", 0.0001, 0.02, 1000, null, "x");
        java.util.List<Double> list = new java.util.ArrayList<>();
        for (float b : lin) {
            list.add((double) b);
        }
        java.util.Map<String, Object> cfg = new java.util.HashMap<>();
        cfg.put("trained_betas", list);
        cfg.put("beta_schedule", "anything-ignored");
        DPMSolverMultistepScheduler a = DPMSolverMultistepScheduler.fromConfig(cfg, Map.of());
        DPMSolverMultistepScheduler b = DPMSolverMultistepScheduler.fromConfig(Map.of(), Map.of());
        org.junit.jupiter.api.Assertions.assertArrayEquals(b.alphasCumprod(), a.alphasCumprod());
    }
}
