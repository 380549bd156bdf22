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
}
