package dev.sdjvm.backend.neuron;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdjvm.Backend;
import dev.sdjvm.GenerationRequest;
import dev.sdjvm.GenerationResult;
import dev.sdjvm.StableDiffusion;
import dev.sdjvm.errors.InvalidRequestException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * UNet NEFFs that take their timestep as int64 or int32 (torch-neuronx keeps the example input's dtype): the schedule's
 * integer timesteps are written as integers, so the image equals the one of a float32-timestep UNet computing the same
 * function (the simulator's unet adds {@code t * 2^-10}: a wrongly encoded integer would change every latent), and
 * differs from a bf16-timestep UNet's (999 is 1000 in bf16). A schedule with fractional timesteps is refused before
 * the first step, naming the scheduler.
 */
class NeffTimestepTest {
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

    /** The tiny sim-neuron model whose UNet NEFF takes the timestep in {@code dtype} (everything else as the fixture). */
    static Path withTimestep(Path dir, String dtype) throws IOException {
        NrtSim.model("sim-neuron", dir);
        String program = "nrtsim 1\nfn unet\nin input0 bfloat16 1 4 8 8\nin input1 " + dtype + " 1\n"
                + "in input2 bfloat16 1 77 16\nout output0 bfloat16 1 4 8 8\n";
        byte[] neff = NeffFiles.neffWithProgram("unet", program);
        Files.delete(dir.resolve("neff/unet.neff"));
        NeffFiles.zip(dir.resolve("compiled_models/unet.pt"),
                Map.of("unet/data.pkl", new byte[] {(byte) 0x80, 2, '.'}, "unet/data/0", neff), false);
        return dir;
    }

    private static GenerationRequest.Builder req() {
        return GenerationRequest.builder("a red circle on a blue background").negativePrompt("green")
                .steps(6).guidanceScale(5).seed(7L);
    }

    private static GenerationResult generate(Path dir, GenerationRequest r) {
        try (StableDiffusion sd = StableDiffusion.load(dir)) {
            assertEquals(Backend.NEURON, sd.info().backend());
            return sd.generate(r);
        }
    }

    @Test
    void integerTimestepsAreWrittenExactly() throws Exception {
        GenerationResult f32 = generate(withTimestep(tmp.resolve("f32"), "float32"), req().build());
        GenerationResult i64 = generate(withTimestep(tmp.resolve("i64"), "int64"), req().build());
        GenerationResult i32 = generate(withTimestep(tmp.resolve("i32"), "int32"), req().build());
        GenerationResult bf16 = generate(withTimestep(tmp.resolve("bf16"), "bfloat16"), req().build());
        assertArrayEquals(f32.latents(), i64.latents(), "int64 timestep = the float32 timestep's value");
        assertArrayEquals(f32.latents(), i32.latents(), "int32 timestep = the float32 timestep's value");
        assertArrayEquals(f32.images().get(0).rgb(), i64.images().get(0).rgb());
        assertFalse(Arrays.equals(f32.latents(), bf16.latents()),
                "the timestep reaches the UNet: bf16 rounds timesteps above 256 and the latents differ");
        assertEquals(0, NrtSim.stats().get("live_models"));
    }

    /** Image-to-image runs the tail of the schedule through the same check and write. */
    @Test
    void integerTimestepsInImageToImage() throws Exception {
        byte[] px = new byte[64 * 64 * 3];
        for (int i = 0; i < px.length; i++) {
            px[i] = (byte) (i * 5 % 253);
        }
        GenerationRequest r = req().initImage(new dev.sdjvm.image.RgbImage(64, 64, px)).strength(0.5).build();
        GenerationResult f32 = generate(withTimestep(tmp.resolve("f32"), "float32"), r);
        GenerationResult i64 = generate(withTimestep(tmp.resolve("i64"), "int64"), r);
        assertArrayEquals(f32.latents(), i64.latents());
    }

    @Test
    void fractionalTimestepsAreRefusedForAnIntegerUnetAndIntegralSigmaSchedulesRun() throws Exception {
        Path dir = withTimestep(tmp.resolve("i64"), "int64");
        try (StableDiffusion sd = StableDiffusion.load(dir)) {
            // Euler's default "linspace" spacing: 999, 832.5, ... (fractional)
            InvalidRequestException e = assertThrows(InvalidRequestException.class,
                    () -> sd.generate(req().scheduler("EulerDiscreteScheduler").build()));
            assertEquals("scheduler", e.field());
            assertTrue(e.getMessage().contains("EulerDiscreteScheduler") && e.getMessage().contains("int64")
                    && e.getMessage().contains("fractional timestep"), e.getMessage());
            // "leading" spacing gives integers: it runs, and equals a float32-timestep UNet
            GenerationRequest leading = req().scheduler("EulerDiscreteScheduler")
                    .schedulerOverrides(Map.of("timestep_spacing", "leading")).build();
            GenerationResult onInt = sd.generate(leading);
            GenerationResult onFloat = generate(withTimestep(tmp.resolve("f32"), "float32"), leading);
            assertArrayEquals(onFloat.latents(), onInt.latents());
            // the pipeline is still usable after the refusal
            assertEquals(6, sd.generate(req().build()).timings().steps());
        }
        // a float32-timestep UNet takes the fractional schedule
        generate(withTimestep(tmp.resolve("f32b"), "float32"), req().scheduler("EulerDiscreteScheduler").build());
    }

    /**
     * The CPU path with a UNet traced on an int64 example timestep whose manifest says so (the sim-model tool's twin):
     * the timestep goes in as int64, so the CPU image equals the int64 NEFF's bit for bit; were it passed in the UNet's
     * bf16 (as for AWS's wrapper), timesteps above 256 would be rounded and the images would differ.
     */
    @Test
    void theCpuPathWritesAManifestsIntegerTimestepAsAnInteger() throws Exception {
        String py = NeuronToolsTest.python("/usr/bin/python3", true);
        org.junit.jupiter.api.Assumptions.assumeTrue(py != null, "/usr/bin/python3 with torch not available");
        Path cpu = tmp.resolve("cpu-i64");
        NeuronToolsTest.Result r = NeuronToolsTest.run(java.util.List.of(py, "../../tools/reference/make_sim_model.py",
                "--out", cpu.toString(), "--kind", "cpu", "--unet-timestep", "int64"));
        assertEquals(0, r.exit(), r.output());
        dev.sdjvm.TestModels.copy(dev.sdjvm.TestModels.resource("dev/sdjvm/default-model/tokenizer"), cpu.resolve("tokenizer"));
        assertTrue(Files.readString(cpu.resolve("compiled_models/sdjvm-manifest.json")).contains("\"int64\""));
        GenerationResult onCpu;
        try (StableDiffusion sd = StableDiffusion.load(cpu, dev.sdjvm.LoadOptions.defaults().withThreads(1))) {
            assertEquals(Backend.CPU, sd.info().backend());
            onCpu = sd.generate(req().build());
            InvalidRequestException e = assertThrows(InvalidRequestException.class,
                    () -> sd.generate(req().scheduler("EulerDiscreteScheduler").build()));
            assertEquals("scheduler", e.field());
        }
        GenerationResult onNeff = generate(withTimestep(tmp.resolve("neff-i64"), "int64"), req().build());
        assertArrayEquals(onNeff.latents(), onCpu.latents(), "CPU int64 timestep = NEFF int64 timestep");
        assertArrayEquals(onNeff.images().get(0).rgb(), onCpu.images().get(0).rgb());
        GenerationResult bf16 = generate(withTimestep(tmp.resolve("neff-bf16"), "bfloat16"), req().build());
        assertFalse(Arrays.equals(bf16.latents(), onCpu.latents()), "a bf16 timestep would have given other latents");
    }
}
