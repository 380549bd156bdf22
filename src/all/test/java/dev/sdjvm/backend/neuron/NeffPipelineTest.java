package dev.sdjvm.backend.neuron;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdjvm.Backend;
import dev.sdjvm.GenerationRequest;
import dev.sdjvm.GenerationResult;
import dev.sdjvm.LoadOptions;
import dev.sdjvm.StableDiffusion;
import dev.sdjvm.errors.BackendException;
import dev.sdjvm.errors.InvalidRequestException;
import dev.sdjvm.errors.ModelLoadException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import dev.sdjvm.TestModels;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The NEFF path end to end on the simulated runtime: a directory in AWS's layout whose {@code .pt} files carry NEFFs
 * generates through libnrt, and gives the image the CPU path gives for TorchScript twins computing the same functions.
 */
class NeffPipelineTest {
    @TempDir
    Path tmp;

    @BeforeEach
    void sim() {
        NrtSim.library();
        NrtSim.reset();
    }

    @AfterEach
    void clean() {
        NrtSim.reset();
    }

    static GenerationRequest.Builder req() {
        return GenerationRequest.builder("a red circle on a blue background").negativePrompt("green")
                .steps(8).guidanceScale(5).seed(42L);
    }

    @Test
    void neffPathEqualsTheCpuPathOnTwinArtifacts() throws Exception {
        Path neuron = NrtSim.model("sim-neuron", tmp.resolve("neuron"));
        Path cpu = NrtSim.model("sim-cpu", tmp.resolve("cpu"));
        GenerationResult onNeuron;
        try (StableDiffusion sd = StableDiffusion.load(neuron)) {
            assertEquals(Backend.NEURON, sd.info().backend());
            onNeuron = sd.generate(req().build());
        }
        GenerationResult onCpu;
        try (StableDiffusion sd = StableDiffusion.load(cpu, LoadOptions.defaults().withThreads(1))) {
            assertEquals(Backend.CPU, sd.info().backend());
            onCpu = sd.generate(req().build());
        }
        assertArrayEquals(onCpu.latents(), onNeuron.latents(), "final latents bit for bit");
        assertArrayEquals(onCpu.images().get(0).rgb(), onNeuron.images().get(0).rgb(), "the same image");
        var s = NrtSim.stats();
        assertEquals(0, s.get("live_models"), "every model unloaded at close");
        assertEquals(0, s.get("live_tensors"));
        assertEquals(0, s.get("initialized"), "nrt_close after the last model");
        int distinct = 0;
        for (byte b : onNeuron.images().get(0).rgb()) {
            distinct |= 1 << ((b & 0xff) >> 5);
        }
        assertTrue(Integer.bitCount(distinct) >= 3, "the image is not flat: the comparison means something");
    }

    private GenerationResult generate(Path dir, LoadOptions o, GenerationRequest r) {
        try (StableDiffusion sd = StableDiffusion.load(dir, o)) {
            return sd.generate(r);
        }
    }

    /**
     * Image-to-image and inpainting (4-channel UNet) on the NEFF path: the VAE encoder's NEFF beside the decoder, the
     * same latents and images as the CPU path on the twin artifacts, bit for bit.
     */
    @Test
    void imageToImageAndInpaintingOnTheNeffPathEqualTheCpuPath() throws Exception {
        Path neuron = NrtSim.model("sim-neuron", tmp.resolve("neuron"));
        Path cpu = NrtSim.model("sim-cpu", tmp.resolve("cpu"));
        byte[] px = new byte[64 * 64 * 3];
        byte[] mk = new byte[64 * 64 * 3];
        for (int i = 0; i < px.length; i++) {
            px[i] = (byte) (i * 7 % 251);
            mk[i] = (byte) ((i / 3) % 64 < 32 ? 255 : 0);  // repaint the left half
        }
        dev.sdjvm.image.RgbImage image = new dev.sdjvm.image.RgbImage(64, 64, px);
        dev.sdjvm.image.RgbImage mask = new dev.sdjvm.image.RgbImage(64, 64, mk);
        GenerationRequest img2img = req().initImage(image).strength(0.6).build();
        GenerationRequest inpaint = req().initImage(image).mask(mask).strength(0.75).build();
        GenerationResult[] onNeuron = new GenerationResult[2];
        try (StableDiffusion sd = StableDiffusion.load(neuron)) {
            assertEquals(Backend.NEURON, sd.info().backend());
            onNeuron[0] = sd.generate(img2img);
            onNeuron[1] = sd.generate(inpaint);
        }
        assertNothingLeft();
        try (StableDiffusion sd = StableDiffusion.load(cpu, LoadOptions.defaults().withThreads(1))) {
            assertEquals(Backend.CPU, sd.info().backend());
            GenerationResult[] onCpu = {sd.generate(img2img), sd.generate(inpaint)};
            for (int i = 0; i < 2; i++) {
                assertEquals(i == 0 ? 4 : 6, onCpu[i].timings().steps(), "int(8 x strength) steps");
                assertArrayEquals(onCpu[i].latents(), onNeuron[i].latents(), "final latents bit for bit");
                assertArrayEquals(onCpu[i].images().get(0).rgb(), onNeuron[i].images().get(0).rgb(), "the same image");
            }
            GenerationResult t2i = sd.generate(req().build());
            assertTrue(!java.util.Arrays.equals(t2i.latents(), onCpu[0].latents()), "the start image matters");
        }
    }

    private static void assertNothingLeft() {
        var s = NrtSim.stats();
        assertEquals(0, s.get("live_models"), "models left loaded");
        assertEquals(0, s.get("live_tensors"), "device tensors left");
        assertEquals(0, s.get("live_sets"), "tensor sets left");
        assertEquals(0, s.get("live_tensor_infos"), "tensor infos left");
        assertEquals(0, s.get("initialized"), "runtime left initialised");
        assertEquals(0, NeuronRuntime.users());
    }

    @Test
    void oneOrTwoUnetReplicasAndBothDtypeNumberingsGiveTheSameImage() throws Exception {
        Path neuron = NrtSim.model("sim-neuron", tmp.resolve("neuron"));
        GenerationResult two = generate(neuron, LoadOptions.defaults().withUnetReplicas(2), req().build());
        GenerationResult one = generate(neuron, LoadOptions.defaults().withUnetReplicas(1), req().build());
        assertArrayEquals(two.latents(), one.latents());
        NrtSim.control().nrtsim_set_legacy_dtypes(1);
        GenerationResult legacy = generate(neuron, LoadOptions.defaults(), req().build());
        assertArrayEquals(two.latents(), legacy.latents(), "SDK < 2.28 dtype codes resolve to the same types");
        assertNothingLeft();
    }

    @Test
    void theCfgHalvesRunOnTwoCoresAtOnce() throws Exception {
        Path neuron = NrtSim.model("sim-neuron", tmp.resolve("neuron"));
        try (StableDiffusion sd = StableDiffusion.load(neuron, LoadOptions.defaults().withUnetReplicas(2).withWarmup(false))) {
            assertEquals(dev.sdjvm.ModelInfo.Device.neuron(0, 1), sd.info().artifacts().get("unet").device());
            NrtSim.control().nrtsim_reset_stats();
            // from step 2 on, every execute waits at the simulator's barrier until a second one is in flight: only
            // truly concurrent executions pass it without timing out (no timing involved); cleared before the VAE
            sd.generate(req().steps(6).listener((k, n, t, ns) -> {
                NrtSim.control().nrtsim_set_exec_barrier(k < n ? 2 : 0, 20_000);
                return true;
            }).build());
            var s = NrtSim.stats();
            assertEquals(0, s.get("barrier_timeouts"), "every UNet half of steps 2..6 met its partner");
            assertEquals(2, s.get("max_concurrent_executes"));
            assertEquals(0b11, s.get("max_concurrent_vnc_mask"), "the two halves ran on NeuronCores 0 and 1 together");
            // core 0: 2 text-encoder calls + 6 UNet halves; core 1: 6 UNet halves + post_quant_conv + decoder
            assertEquals(8, s.get("execs_per_vnc[0]"));
            assertEquals(8, s.get("execs_per_vnc[1]"));
        } finally {
            NrtSim.control().nrtsim_set_exec_barrier(0, 0);
        }
    }

    @Test
    void withOneReplicaTheHalvesAreSequentialAndTheBarrierSaysSo() throws Exception {
        Path neuron = NrtSim.model("sim-neuron", tmp.resolve("neuron"));
        try (StableDiffusion sd = StableDiffusion.load(neuron, LoadOptions.defaults().withUnetReplicas(1).withWarmup(false))) {
            NrtSim.control().nrtsim_set_exec_barrier(2, 50);
            NrtSim.control().nrtsim_reset_stats();
            sd.generate(req().steps(2).build());
            var s = NrtSim.stats();
            assertEquals(s.get("executes"), s.get("barrier_timeouts"), "no execution had a partner");
            assertEquals(1, s.get("max_concurrent_executes"));
        } finally {
            NrtSim.control().nrtsim_set_exec_barrier(0, 0);
        }
    }

    @Test
    void nothingIsAllocatedPerStepAndAStepMovesOnlySampleTimestepAndNoise() throws Exception {
        Path neuron = NrtSim.model("sim-neuron", tmp.resolve("neuron"));
        try (StableDiffusion sd = StableDiffusion.load(neuron, LoadOptions.defaults().withUnetReplicas(2))) {
            sd.generate(req().steps(2).build());  // the pipeline's invocations now exist
            var a = NrtSim.stats();
            sd.generate(req().steps(2).build());
            var b = NrtSim.stats();
            sd.generate(req().steps(12).build());
            var c = NrtSim.stats();
            for (String k : new String[] {"tensor_allocs", "set_allocs", "loads"}) {
                assertEquals(a.get(k), c.get(k), k + ": nothing allocated by later generations, whatever their steps");
            }
            long w2 = b.get("tensor_writes") - a.get("tensor_writes");
            long w12 = c.get("tensor_writes") - b.get("tensor_writes");
            // per generation: 2 text-encoder ids, 2 UNet text embeddings (one per CFG half, once), 4 per step
            // (sample + timestep per half), 2 VAE inputs
            assertEquals(2 + 2 + 4 * 2 + 2, w2);
            assertEquals(4 * 10, w12 - w2, "a step writes sample and timestep of each half, nothing else");
            long r12 = c.get("tensor_reads") - b.get("tensor_reads");
            assertEquals(2 + 2 * 12 + 2, r12, "a step reads each half's noise prediction once");
        }
        assertNothingLeft();
    }

    @Test
    void resourceFailureAtLoadIsAClearErrorLeavesNothingAndTheNextLoadWorks() throws Exception {
        Path neuron = NrtSim.model("sim-neuron", tmp.resolve("neuron"));
        GenerationResult base = generate(neuron, LoadOptions.defaults(), req().build());
        NrtSim.control().nrtsim_inject("nrt_load", 2, 1, 4);  // the third nrt_load: the second UNet replica
        BackendException e = assertThrows(BackendException.class, () -> StableDiffusion.load(neuron));
        assertEquals("NRT_RESOURCE", e.status());
        assertTrue(e.getMessage().contains("unet") && e.getMessage().contains("NeuronCore 1"), e.getMessage());
        assertNothingLeft();
        assertArrayEquals(base.latents(), generate(neuron, LoadOptions.defaults(), req().build()).latents());
        assertNothingLeft();
    }

    @Test
    void busyAndTimeoutAtExecuteFailTheRequestNotThePipeline() throws Exception {
        Path neuron = NrtSim.model("sim-neuron", tmp.resolve("neuron"));
        GenerationResult base = generate(neuron, LoadOptions.defaults(), req().build());
        try (StableDiffusion sd = StableDiffusion.load(neuron)) {
            for (int[] c : new int[][] {{1005, 4}, {5, 5}, {1005, 7}}) {  // status, executes to skip (UNet halves on both threads)
                NrtSim.control().nrtsim_inject("nrt_execute", c[1], 1, c[0]);
                BackendException e = assertThrows(BackendException.class, () -> sd.generate(req().build()));
                assertEquals(c[0] == 5 ? "NRT_TIMEOUT" : "NRT_EXEC_NC_BUSY", e.status());
                assertTrue(e.getMessage().contains("nrt_execute"), e.getMessage());
                assertArrayEquals(base.latents(), sd.generate(req().build()).latents(), "the pipeline still works");
            }
        }
        assertNothingLeft();
    }

    @Test
    void aNeffTheRuntimeRejectsFailsTheLoadNamingItsStatus() throws Exception {
        Path neuron = NrtSim.model("sim-neuron", tmp.resolve("neuron"));
        byte[] neff = Files.readAllBytes(neuron.resolve("neff/unet.neff"));
        ByteBuffer.wrap(neff).order(ByteOrder.LITTLE_ENDIAN).putLong(24, 99);  // neff_version_major
        NeffFiles.zip(neuron.resolve("compiled_models/unet.pt"), Map.of("unet/data/0", neff), false);
        BackendException e = assertThrows(BackendException.class, () -> StableDiffusion.load(neuron));
        assertEquals("NRT_UNSUPPORTED_NEFF_VERSION", e.status());
        assertTrue(e.getMessage().contains("unet NEFF (unet.pt record 'unet/data/0'"), e.getMessage());
        assertNothingLeft();
    }

    @Test
    void aPtHoldingNoNeffIsNamed() throws Exception {
        Path neuron = NrtSim.model("sim-neuron", tmp.resolve("neuron"));
        Files.copy(dev.sdjvm.TestModels.resource("models/sim-cpu/compiled_models/unet.pt"),
                neuron.resolve("compiled_models/unet.pt"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> StableDiffusion.load(neuron));
        assertTrue(e.getMessage().contains("no NEFF found for [unet]"), e.getMessage());
        assertTrue(e.getMessage().contains("unet.pt"), e.getMessage());
        assertNothingLeft();
    }

    @Test
    void neffsBesideThePtInTheCompilerWorkdirOrDeflatedInsideItAllRun() throws Exception {
        Path neuron = NrtSim.model("sim-neuron", tmp.resolve("neuron"));
        GenerationResult base = generate(neuron, LoadOptions.defaults(), req().build());
        Path cpuArtifacts = dev.sdjvm.TestModels.resource("models/sim-cpu/compiled_models");
        // 1. beside: compiled_models/<name>.neff next to .pt files that hold none (CPU twins stand in for them)
        Path beside = NrtSim.model("sim-neuron", tmp.resolve("beside"));
        Path work = NrtSim.model("sim-neuron", tmp.resolve("workdir"));
        for (dev.sdjvm.model.ArtifactRole role : dev.sdjvm.model.ArtifactRole.values()) {
            if (!Files.exists(cpuArtifacts.resolve(role + ".pt"))) {
                continue;  // SDXL's text_encoder_2: not part of this SD 2.x fixture
            }
            Files.copy(cpuArtifacts.resolve(role + ".pt"), beside.resolve("compiled_models/" + role + ".pt"),
                    java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            Files.copy(beside.resolve("neff/" + role + ".neff"), beside.resolve("compiled_models/" + role + ".neff"));
            // 2. AWS's compiler work directory: <root>/compiler_workdir/<role>/**/graph.neff
            Files.copy(cpuArtifacts.resolve(role + ".pt"), work.resolve("compiled_models/" + role + ".pt"),
                    java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            Path g = work.resolve("compiler_workdir/" + role + "/2026-11-30T10-00-00/graph.neff");
            Files.createDirectories(g.getParent());
            Files.copy(work.resolve("neff/" + role + ".neff"), g);
        }
        // 3. deflated records (torch writes stored ones; the scan reads through the compression)
        Path deflated = NrtSim.model("sim-neuron", tmp.resolve("deflated"));
        for (dev.sdjvm.model.ArtifactRole role : dev.sdjvm.model.ArtifactRole.values()) {
            if (!Files.exists(deflated.resolve("compiled_models/" + role + ".pt"))) {
                continue;
            }
            rezip(deflated.resolve("compiled_models/" + role + ".pt"));
        }
        for (Path d : new Path[] {beside, work, deflated}) {
            try (StableDiffusion sd = StableDiffusion.load(d)) {
                assertEquals(Backend.NEURON, sd.info().backend(), d.toString());
                assertArrayEquals(base.latents(), sd.generate(req().build()).latents(), d.toString());
            }
        }
        assertNothingLeft();
    }

    private static void rezip(Path pt) throws IOException {
        Map<String, byte[]> records = new java.util.LinkedHashMap<>();
        try (var zip = new java.util.zip.ZipFile(pt.toFile())) {
            for (var e : java.util.Collections.list(zip.entries())) {
                records.put(e.getName(), zip.getInputStream(e).readAllBytes());
            }
        }
        NeffFiles.zip(pt, records, true);
    }

    @Test
    void throughputModePutsPipelinesOnDisjointCoresAndRefusesMoreThanThereAre() throws Exception {
        Path neuron = NrtSim.model("sim-neuron", tmp.resolve("neuron"));
        GenerationResult base = generate(neuron, LoadOptions.defaults(), req().build());
        try (StableDiffusion sd = StableDiffusion.load(neuron, LoadOptions.defaults().withPipelines(2))) {
            assertEquals(1, sd.info().unetReplicas(), "two pipelines on two cores: one replica each");
            java.util.concurrent.Callable<GenerationResult> job = () -> sd.generate(req().build());
            var pool = java.util.concurrent.Executors.newFixedThreadPool(2);
            var results = pool.invokeAll(java.util.List.of(job, job));
            pool.shutdown();
            for (var f : results) {
                assertArrayEquals(base.latents(), f.get().latents());
            }
            var s = NrtSim.stats();
            assertTrue(s.get("execs_per_vnc[0]") > 0 && s.get("execs_per_vnc[1]") > 0, "both cores used");
        }
        BackendException e = assertThrows(BackendException.class, () -> StableDiffusion.load(neuron,
                LoadOptions.defaults().withPipelines(2).withUnetReplicas(2)));
        assertTrue(e.getMessage().contains("2 NeuronCore(s) visible"), e.getMessage());
        assertNothingLeft();
    }

    @Test
    void compiledArtifactsTakeOnlyTheirImageSize() throws Exception {
        Path neuron = NrtSim.model("sim-neuron", tmp.resolve("neuron"));
        try (StableDiffusion sd = StableDiffusion.load(neuron)) {
            InvalidRequestException e = assertThrows(InvalidRequestException.class,
                    () -> sd.generate(req().height(128).build()));
            assertEquals("height", e.field());
            assertEquals("DPMSolverMultistepScheduler", sd.generate(req().steps(2).build()).scheduler());
        }
    }

    @Test
    void theOutputOfAwsNotebookLaidOutByTheToolGenerates() throws Exception {
        Path fixture = dev.sdjvm.TestModels.resource("models/sim-neuron");
        // the notebook's layout: <root>/<part>/model.pt with the compiler's files (graph.neff) beside
        Path nb = tmp.resolve("sd2_compile_dir_512");
        Path hf = NrtSim.model("sim-neuron", tmp.resolve("hf-snapshot"));  // configs + tokenizer, as a diffusers snapshot
        for (dev.sdjvm.model.ArtifactRole required : dev.sdjvm.model.ArtifactRole.values()) {
            if (!dev.sdjvm.model.ModelLayout.COMPILED_MODELS.requires(required)) {
                continue;
            }
            String role = required.id();
            Path d = Files.createDirectories(nb.resolve(role).resolve("2026-11-30T10-00-00"));
            Files.copy(fixture.resolve("compiled_models/" + role + ".pt"), nb.resolve(role).resolve("model.pt"));
            Files.copy(fixture.resolve("neff/" + role + ".neff"), d.resolve("graph.neff"));
        }
        Path out = tmp.resolve("sd21-neuron");
        Process p = new ProcessBuilder("bash", "../../tools/model/aws_notebook_to_model.sh", nb.toString(), hf.toString(),
                out.toString()).redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), log);
        assertTrue(Files.isRegularFile(out.resolve("compiled_models/unet.neff")), log);
        GenerationResult base = generate(NrtSim.model("sim-neuron", tmp.resolve("base")), LoadOptions.defaults(), req().build());
        try (StableDiffusion sd = StableDiffusion.load(out)) {
            assertEquals(Backend.NEURON, sd.info().backend());
            assertArrayEquals(base.latents(), sd.generate(req().build()).latents());
        }
    }

    @Test
    void shapeLessTensorInfoIsCompletedFromTheManifestOrRefusedClearly() throws Exception {
        // libnrt reports no shapes (and dtype 0) for a NEFF without debug information: the manifest supplies them
        Path neuron = NrtSim.model("sim-neuron", tmp.resolve("neuron"));
        GenerationResult base = generate(neuron, LoadOptions.defaults(), req().build());
        LoadOptions onNeuron = LoadOptions.defaults().withBackend(Backend.NEURON);
        NrtSim.control().nrtsim_set_bare_tensor_info(1);
        try {
            RuntimeException none = assertThrows(RuntimeException.class, () -> StableDiffusion.load(neuron, onNeuron));
            assertTrue(none.getMessage().contains("no shape") && none.getMessage().contains("sdjvm-manifest.json"),
                    none.getMessage());
            // the CPU twins' manifest lists the same tensors (names, dtypes, shapes) in argument order
            String manifest = Files.readString(TestModels.resource("models/sim-cpu/compiled_models/sdjvm-manifest.json"))
                    .replace("\"target\": \"cpu\"", "\"target\": \"neuron\"");
            Path file = neuron.resolve("compiled_models/sdjvm-manifest.json");
            Files.writeString(file, manifest);
            GenerationResult bare = generate(neuron, onNeuron, req().build());
            assertArrayEquals(base.latents(), bare.latents(), "the same image from names and sizes only");
            // a manifest of other shapes is not this NEFF's: refused, naming the sizes
            Files.writeString(file, manifest.replaceFirst("\"sample\",\\s*\"dtype\": \"bfloat16\",\\s*\"shape\": \\[\\s*1,",
                    "\"sample\", \"dtype\": \"bfloat16\", \"shape\": [2,"));
            RuntimeException wrong = assertThrows(RuntimeException.class, () -> StableDiffusion.load(neuron, onNeuron));
            assertTrue(wrong.getMessage().contains("bytes"), wrong.getMessage());
        } finally {
            NrtSim.control().nrtsim_set_bare_tensor_info(0);
        }
        assertNothingLeft();
    }
}
