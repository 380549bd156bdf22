package dev.sdjvm.backend.neuron;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.sun.jna.Memory;
import dev.sdjvm.backend.Invocation;
import dev.sdjvm.backend.TensorSpec;
import dev.sdjvm.errors.BackendException;
import dev.sdjvm.model.ArtifactRole;
import dev.sdjvm.model.DType;
import dev.sdjvm.tensor.Bf16;
import dev.sdjvm.tensor.Fp16;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Every tensor reaches the runtime under its NEFF name, in its dtype and in little-endian byte order: an echo NEFF on the
 * simulated runtime copies each input to an output of another dtype, and what comes back is exactly what torch's
 * {@code .to(dtype)} would give. The simulator refuses an execute whose tensor sets miss a name or a byte.
 */
class NeffIoTest {
    static final String PROGRAM = """
            nrtsim 1
            fn echo
            in input0 bfloat16 2 3
            in input1 float32 4
            in input2 int64 3
            in input3 int32 2
            in input4 float16 3
            out output0 float32 2 3
            out output1 bfloat16 4
            out output2 int64 3
            out output3 float32 2
            out output4 float32 3
            """;

    private NeuronRuntime runtime;

    @BeforeEach
    void open() {
        runtime = NeuronRuntime.open(NrtSim.library());
        NrtSim.reset();
        runtime.attach();
    }

    @AfterEach
    void close() {
        runtime.detach();
        NrtSim.reset();
    }

    @ParameterizedTest(name = "legacy dtype numbering: {0}")
    @ValueSource(booleans = {false, true})
    void valuesComeBackAsTorchWouldConvertThem(boolean legacy) {
        NrtSim.control().nrtsim_set_legacy_dtypes(legacy ? 1 : 0);
        byte[] neff = NeffFiles.neffWithProgram("echo", PROGRAM);
        try (Memory m = new Memory(neff.length)) {
            m.write(0, neff, 0, neff.length);
            NeffArtifact a = NeffArtifact.load(runtime, m, neff.length, 1, ArtifactRole.UNET, Path.of("echo.neff"));
            try {
                assertEquals("nc1", a.device());
                assertEquals(List.of("input0", "input1", "input2", "input3", "input4"),
                        a.inputs().stream().map(TensorSpec::name).toList());
                assertEquals(List.of(DType.BFLOAT16, DType.FLOAT32, DType.INT64, DType.INT32, DType.FLOAT16),
                        a.inputs().stream().map(TensorSpec::dtype).toList());
                assertEquals(DType.BFLOAT16, a.outputs().get(1).dtype());
                long[][] shapes = a.inputs().stream().map(TensorSpec::shape).toArray(long[][]::new);
                float[] bf = {1f, -2.5f, 3.14159f, 1e-3f, 65504f, -0f};
                float[] f32 = {0.1f, -1e30f, 7.0000005f, Float.MIN_VALUE};
                int[] ids = {0, 49407, 7};
                int[] i32 = {-5, 123456};
                float[] half = {1f / 3, 65504f, 1e-6f};
                try (Invocation inv = a.open(shapes)) {
                    inv.write(0, 0, bf, 0, 3);       // in two parts: partial writes land where they should
                    inv.write(0, 3, bf, 3, 3);
                    inv.write(1, 0, f32, 0, 4);
                    inv.write(2, 0, ids, 0, 3);
                    inv.write(3, 0, i32, 0, 2);
                    inv.write(4, 0, half, 0, 3);
                    inv.run();
                    float[] out0 = new float[6];
                    inv.read(0, out0, 0);
                    float[] expect0 = new float[6];
                    for (int i = 0; i < 6; i++) {
                        expect0[i] = Bf16.round(bf[i]);
                    }
                    assertArrayEquals(expect0, out0);
                    float[] out1 = new float[4];
                    inv.read(1, out1, 0);
                    for (int i = 0; i < 4; i++) {
                        assertEquals(Bf16.round(f32[i]), out1[i], "float32 -> bf16 -> float32 " + f32[i]);
                    }
                    float[] out2 = new float[3];
                    inv.read(2, out2, 0);
                    assertArrayEquals(new float[] {0, 49407, 7}, out2);
                    float[] out3 = new float[2];
                    inv.read(3, out3, 0);
                    assertArrayEquals(new float[] {-5, 123456}, out3);
                    float[] out4 = new float[3];
                    inv.read(4, out4, 0);
                    for (int i = 0; i < 3; i++) {
                        assertEquals(Fp16.toFloat(Fp16.fromFloat(half[i])), out4[i]);
                    }
                    // the same invocation again: only what was written again moves
                    long writes = NrtSim.stats().get("tensor_writes");
                    inv.write(1, 2, new float[] {42f}, 0, 1);
                    inv.run();
                    assertEquals(writes + 1, NrtSim.stats().get("tensor_writes"), "only the dirty input was copied");
                    inv.read(1, out1, 0);
                    assertEquals(42f, out1[2]);
                    assertEquals(Bf16.round(f32[0]), out1[0], "the rest of the device tensor kept its values");
                    assertThrows(IndexOutOfBoundsException.class, () -> inv.write(1, 3, new float[2], 0, 2));
                    assertThrows(IllegalArgumentException.class, () -> inv.write(2, 0, new float[1], 0, 1));
                }
                assertEquals(2, NrtSim.stats().get("execs_per_vnc[1]"));
            } finally {
                a.close();
            }
        }
        var s = NrtSim.stats();
        assertEquals(0, s.get("live_models"));
        assertEquals(0, s.get("live_tensors"), "invocation close freed its device tensors");
        assertEquals(0, s.get("live_sets"));
        assertEquals(0, s.get("live_tensor_infos"));
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"fn bogus", "in input0 float32 0"})
    void aNeffTheRuntimeRejectsIsABackendExceptionWithItsStatus(String bad) {
        byte[] neff = NeffFiles.neffWithProgram("bad", "nrtsim 1\n" + bad + "\nout output0 float32 1\n");
        try (Memory m = new Memory(neff.length)) {
            m.write(0, neff, 0, neff.length);
            BackendException e = assertThrows(BackendException.class,
                    () -> NeffArtifact.load(runtime, m, neff.length, 0, ArtifactRole.UNET, Path.of("bad.neff")));
            assertEquals("NRT_INVALID", e.status());
            assertEquals(0, NrtSim.stats().get("live_models"));
        }
    }

    @Test
    void closeWaitsForARunningExecuteAndLaterUseThrows() throws Exception {
        // a slow device: close() from another thread while nrt_execute runs must not unload (or free the tensors of)
        // the model under it; it returns once the execute has, and every later use is a clear Java error
        String program = """
                nrtsim 1
                fn echo
                in input0 float32 4
                out output0 float32 4
                delay_us 400000
                """;
        byte[] neff = NeffFiles.neffWithProgram("echo", program);
        try (Memory m = new Memory(neff.length)) {
            m.write(0, neff, 0, neff.length);
            NeffArtifact a = NeffArtifact.load(runtime, m, neff.length, 0, ArtifactRole.UNET, Path.of("slow.neff"));
            Invocation inv = a.open(new long[] {4});
            inv.write(0, 0, new float[] {1, 2, 3, 4}, 0, 4);
            java.util.concurrent.CountDownLatch started = new java.util.concurrent.CountDownLatch(1);
            java.util.concurrent.CompletableFuture<Long> running = java.util.concurrent.CompletableFuture.supplyAsync(() -> {
                started.countDown();
                inv.run();
                return System.nanoTime();
            });
            started.await();
            Thread.sleep(100);  // well inside the 400 ms execute
            long t0 = System.nanoTime();
            a.close();
            long closed = System.nanoTime();
            double waited = (closed - t0) / 1e6;
            running.get();  // the running execute completed normally (no exception)
            assertEquals(0, NrtSim.stats().get("unloads_during_execute"), "nothing unloaded under the execute");
            assertEquals(0, NrtSim.stats().get("invalid_handles"));
            org.junit.jupiter.api.Assertions.assertTrue(waited > 150, "close waited for the execute: " + waited + " ms");
            assertThrows(IllegalStateException.class, inv::run);
            assertThrows(IllegalStateException.class, () -> inv.read(0, new float[4], 0));
            assertThrows(IllegalStateException.class, () -> a.open(new long[] {4}));
            a.close();  // idempotent
        }
    }
}
