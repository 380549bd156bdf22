package dev.sdjvm.backend.neuron;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.jna.Function;
import com.sun.jna.NativeLibrary;
import dev.sdjvm.errors.BackendException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * NeuronRuntime's JNA binding exercised against a real shared library built by gcc from C that includes our
 * {@code include/nrt_binding.h} and implements the documented libnrt functions (version 2.22.3.0, 2 cores, 1 visible;
 * a test hook forces the next status). That checks the header compiles, the symbol names and the struct layout
 * JNA uses; the real libnrt needs an Inferentia instance (see NeuronDeviceIT).
 */
class NeuronRuntimeTest {
    @TempDir
    Path tmp;

    static final String FAKE_NRT = """
            #include <string.h>
            #include "nrt_binding.h"
            static int next_status = 0;
            void sdjvm_test_set_next_status(int s) { next_status = s; }
            static int take(void) { int s = next_status; next_status = 0; return s; }
            NRT_STATUS nrt_get_version(nrt_version_t *ver, size_t size) {
                int s = take(); if (s) return (NRT_STATUS) s;
                if (size != sizeof(nrt_version_t)) return NRT_INVALID;
                memset(ver, 0, sizeof *ver);
                ver->rt_major = 2; ver->rt_minor = 22; ver->rt_patch = 3; ver->rt_maintenance = 0;
                strcpy(ver->rt_detail, "fake runtime for tests");
                strcpy(ver->git_hash, "0123abcd");
                return NRT_SUCCESS;
            }
            NRT_STATUS nrt_get_total_nc_count(uint32_t *n) { int s = take(); if (s) return (NRT_STATUS) s; *n = 2; return NRT_SUCCESS; }
            NRT_STATUS nrt_get_visible_nc_count(uint32_t *n) { int s = take(); if (s) return (NRT_STATUS) s; *n = 1; return NRT_SUCCESS; }
            static int inited = 0;
            NRT_STATUS nrt_init(nrt_framework_type_t fw, const char *a, const char *b) {
                int s = take(); if (s) return (NRT_STATUS) s;
                if (fw != NRT_FRAMEWORK_TYPE_NO_FW) return NRT_INVALID;
                inited++; return NRT_SUCCESS;
            }
            void nrt_close(void) { inited--; }
            int sdjvm_test_inited(void) { return inited; }
            """;

    private Path buildFake() throws Exception {
        Gcc.assumeAvailable();
        Path include = Path.of("../../include").toAbsolutePath().normalize();
        assertTrue(Files.isRegularFile(include.resolve("nrt_binding.h")), "run from the project root");
        return Gcc.sharedLibrary(tmp.resolve("neuron/lib"), "libnrt.so", FAKE_NRT, "-I" + include);
    }

    @Test
    void bindsVersionAndCoreCountsAndMapsStatuses() throws Exception {
        Path lib = buildFake();
        NeuronRuntime nrt = NeuronRuntime.open(lib);
        NeuronRuntime.Version v = nrt.version();
        assertEquals(2, v.major());
        assertEquals(22, v.minor());
        assertEquals(3, v.patch());
        assertEquals("fake runtime for tests", v.detail());
        assertEquals("0123abcd", v.gitHash());
        assertEquals(2, nrt.totalCoreCount());
        assertEquals(1, nrt.visibleCoreCount());

        Function setNext = NativeLibrary.getInstance(lib.toString()).getFunction("sdjvm_test_set_next_status");
        setNext.invoke(new Object[] {4});
        BackendException e = assertThrows(BackendException.class, nrt::visibleCoreCount);
        assertEquals("NRT_RESOURCE", e.status());
        assertTrue(e.getMessage().contains("nrt_get_visible_nc_count"), e.getMessage());

        setNext.invoke(new Object[] {1005});
        assertEquals("NRT_EXEC_NC_BUSY", assertThrows(BackendException.class, nrt::totalCoreCount).status());
        setNext.invoke(new Object[] {77});
        assertEquals("NRT_STATUS(77)", assertThrows(BackendException.class, nrt::version).status());
        assertEquals(2, nrt.totalCoreCount(), "the hook applies to one call only");

        Function inited = NativeLibrary.getInstance(lib.toString()).getFunction("sdjvm_test_inited");
        nrt.attach();
        nrt.attach(); // a second user: no second nrt_init
        assertEquals(1, inited.invokeInt(new Object[0]));
        nrt.detach();
        assertEquals(1, inited.invokeInt(new Object[0]), "nrt_close only after the last user");
        nrt.detach();
        nrt.detach(); // no user left: nothing to do
        assertEquals(0, inited.invokeInt(new Object[0]));
        setNext.invoke(new Object[] {13});
        assertEquals("NRT_UNINITIALIZED", assertThrows(BackendException.class, nrt::attach).status());
        assertEquals(0, NeuronRuntime.users(), "a failed nrt_init leaves no user");
    }

    @Test
    void statusTableMatchesTheDocumentedValues() {
        // values from nrt_status.h as published in the Neuron Runtime API docs
        Map<String, Integer> documented = Map.ofEntries(Map.entry("NRT_SUCCESS", 0), Map.entry("NRT_FAILURE", 1),
                Map.entry("NRT_INVALID", 2), Map.entry("NRT_INVALID_HANDLE", 3), Map.entry("NRT_RESOURCE", 4),
                Map.entry("NRT_TIMEOUT", 5), Map.entry("NRT_HW_ERROR", 6), Map.entry("NRT_QUEUE_FULL", 7),
                Map.entry("NRT_LOAD_NOT_ENOUGH_NC", 9), Map.entry("NRT_UNSUPPORTED_NEFF_VERSION", 10),
                Map.entry("NRT_FAIL_HOST_MEM_ALLOC", 11), Map.entry("NRT_UNINITIALIZED", 13),
                Map.entry("NRT_CLOSED", 14), Map.entry("NRT_QUEUE_EMPTY", 15),
                Map.entry("NRT_EXEC_UNIT_UNRECOVERABLE", 101), Map.entry("NRT_EXEC_BAD_INPUT", 1002),
                Map.entry("NRT_EXEC_COMPLETED_WITH_NUM_ERR", 1003), Map.entry("NRT_EXEC_COMPLETED_WITH_ERR", 1004),
                Map.entry("NRT_EXEC_NC_BUSY", 1005), Map.entry("NRT_EXEC_OOB", 1006),
                Map.entry("NRT_COLL_PENDING", 1100), Map.entry("NRT_EXEC_HW_ERR_COLLECTIVES", 1200),
                Map.entry("NRT_EXEC_HW_ERR_HBM_UE", 1201), Map.entry("NRT_EXEC_HW_ERR_NC_UE", 1202),
                Map.entry("NRT_EXEC_HW_ERR_DMA_ABORT", 1203), Map.entry("NRT_EXEC_SW_NQ_OVERFLOW", 1204),
                Map.entry("NRT_EXEC_HW_ERR_REPAIRABLE_HBM_UE", 1205), Map.entry("NRT_NETWORK_PROXY_FAILURE", 1206));
        assertEquals(documented.size(), NrtStatus.values().length);
        documented.forEach((name, code) -> {
            assertEquals(name, NrtStatus.of(code).name());
            assertEquals(name, NrtStatus.nameOf(code));
            if (code != 0) {
                BackendException e = assertThrows(BackendException.class, () -> NrtStatus.check(code, "nrt_x"));
                assertEquals(name, e.status());
                assertTrue(e.getMessage().contains("[" + name + "]") && e.getMessage().contains("nrt_x"));
            }
        });
        NrtStatus.check(0, "nrt_x");
        assertNull(NrtStatus.of(8));
        assertEquals("NRT_STATUS(8)", NrtStatus.nameOf(8));
    }

    @Test
    void headerValuesMatchTheJavaEnum() throws Exception {
        // compile a tiny program against include/nrt_binding.h that prints every enum value and the struct size
        Gcc.assumeAvailable();
        Path include = Path.of("../../include").toAbsolutePath().normalize();
        StringBuilder c = new StringBuilder("#include <stdio.h>\n#include \"nrt_binding.h\"\nint main(void){\n");
        for (NrtStatus s : NrtStatus.values()) {
            c.append("printf(\"").append(s.name()).append(" %d\\n\", (int) ").append(s.name()).append(");\n");
        }
        c.append("printf(\"sizeof %zu\\n\", sizeof(nrt_version_t));\nreturn 0;}\n");
        Path src = tmp.resolve("p.c");
        Files.writeString(src, c);
        Path exe = tmp.resolve("p");
        Process p = new ProcessBuilder("gcc", "-I" + include, "-o", exe.toString(), src.toString())
                .redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes());
        assertEquals(0, p.waitFor(), log);
        Process r = new ProcessBuilder(exe.toString()).start();
        List<String> lines = new String(r.getInputStream().readAllBytes()).lines().toList();
        assertEquals(0, r.waitFor());
        for (String line : lines) {
            String[] kv = line.split(" ");
            if (kv[0].equals("sizeof")) {
                assertEquals(new NeuronRuntime.NrtVersionStruct().size(), Integer.parseInt(kv[1]),
                        "JNA struct layout = C layout");
            } else {
                assertEquals(NrtStatus.valueOf(kv[0]).code(), Integer.parseInt(kv[1]), kv[0]);
            }
        }
    }

    @Test
    void candidateOrderAndMissingLibraryMessage() throws Exception {
        Path dirA = Files.createDirectories(tmp.resolve("a"));
        Path fileB = tmp.resolve("b/libnrt.so");
        List<Path> c = NeuronRuntime.candidates(dirA.toString(),
                Map.of("SDJVM_NEURON_NRT_PATH", fileB.toString(), "LD_LIBRARY_PATH", "/x/lib::/y"));
        assertEquals(List.of(dirA.resolve("libnrt.so"), dirA.resolve("libnrt.so.1"), fileB,
                Path.of("/x/lib/libnrt.so"), Path.of("/x/lib/libnrt.so.1"), Path.of("/y/libnrt.so"),
                Path.of("/y/libnrt.so.1"), Path.of("/opt/aws/neuron/lib/libnrt.so"),
                Path.of("/opt/aws/neuron/lib/libnrt.so.1")), c);
        assertEquals(List.of(Path.of("/opt/aws/neuron/lib/libnrt.so"), Path.of("/opt/aws/neuron/lib/libnrt.so.1")),
                NeuronRuntime.candidates(null, Map.of()));

        Path notElf = tmp.resolve("bad/libnrt.so");
        Files.createDirectories(notElf.getParent());
        Files.writeString(notElf, "not a library");
        BackendException e = assertThrows(BackendException.class, () -> NeuronRuntime.open(notElf));
        assertTrue(e.getMessage().contains(notElf.toString()), e.getMessage());
    }
}
