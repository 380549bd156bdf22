package dev.sdjvm.backend.neuron;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** ElfFile against real shared objects built by gcc for the test, cross-checked with what the sources declare. */
class ElfFileTest {
    @TempDir
    Path tmp;

    @Test
    void readsNeededSonameRunpathVersionsAndSymbols() throws Exception {
        Gcc.assumeAvailable();
        // a stand-in "libc10.so" with one exported function, then a library that needs it
        Path deps = tmp.resolve("deps");
        Gcc.sharedLibrary(deps, "libc10.so", "int c10_probe(int x) { return x + 1; }\n", "-Wl,-soname,libc10.so");
        Path lib = Gcc.sharedLibrary(tmp.resolve("lib"), "libuser.so",
                "#include <stdio.h>\nextern int c10_probe(int);\nint user_entry(int x) { printf(\"%d\", x); return c10_probe(x); }\n",
                "-L" + deps, "-lc10", "-Wl,-soname,libuser.so.7", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../deps");

        ElfFile elf = ElfFile.read(lib);
        assertTrue(elf.is64Bit() || !System.getProperty("os.arch").contains("64"));
        assertEquals(ElfFile.ET_DYN, elf.type());
        assertEquals(ElfFile.jvmMachine(), elf.machine(), "gcc builds for the host, as the JVM runs");
        assertTrue(elf.needed().contains("libc10.so"), elf.needed().toString());
        assertTrue(elf.needed().stream().anyMatch(n -> n.startsWith("libc.so")), elf.needed().toString());
        assertEquals("libuser.so.7", elf.soname());
        assertEquals(List.of("$ORIGIN/../deps"), elf.runPath());

        List<ElfFile.Symbol> syms = elf.dynamicSymbols();
        assertTrue(syms.stream().anyMatch(s -> s.name().equals("user_entry") && s.defined()));
        assertTrue(syms.stream().anyMatch(s -> s.name().equals("c10_probe") && !s.defined()));
        assertTrue(syms.stream().anyMatch(s -> s.name().equals("printf") && !s.defined()));

        // printf comes from glibc with a GLIBC_2.x version requirement
        List<ElfFile.VersionNeed> vn = elf.versionNeeds();
        assertTrue(vn.stream().anyMatch(v -> v.file().startsWith("libc.so")
                && v.versions().stream().anyMatch(x -> x.startsWith("GLIBC_2."))), vn.toString());

        // cross-check the dynamic section with binutils when readelf is there
        String readelf = run("readelf", "-d", lib.toString());
        if (readelf != null) {
            List<String> fromReadelf = Arrays.stream(readelf.split("\n")).filter(l -> l.contains("(NEEDED)"))
                    .map(l -> l.substring(l.indexOf('[') + 1, l.indexOf(']'))).collect(Collectors.toList());
            assertEquals(fromReadelf, elf.needed());
        }
    }

    @Test
    void versionDefinitionsFromAVersionScript() throws Exception {
        Gcc.assumeAvailable();
        Path map = tmp.resolve("v.map");
        Files.writeString(map, "TORCHTEST_2.5 { global: f25; local: *; };\nTORCHTEST_2.7 { global: f27; } TORCHTEST_2.5;\n");
        Path lib = Gcc.sharedLibrary(tmp, "libver.so", "int f25(void){return 25;}\nint f27(void){return 27;}\n",
                "-Wl,--version-script=" + map, "-Wl,-soname,libver.so");
        List<String> defs = ElfFile.read(lib).versionDefinitions();
        assertTrue(defs.containsAll(List.of("TORCHTEST_2.5", "TORCHTEST_2.7")), defs.toString());
    }

    @Test
    void rejectsNonElfAndTruncatedFiles() throws Exception {
        Path text = tmp.resolve("libtext.so");
        Files.writeString(text, "/* GNU ld script */\nGROUP ( /lib/x86_64-linux-gnu/libc.so.6 )\n");
        IOException e1 = assertThrows(IOException.class, () -> ElfFile.read(text));
        assertTrue(e1.getMessage().contains("not an ELF file"), e1.getMessage());
        assertTrue(e1.getMessage().contains(text.toString()));

        Path empty = tmp.resolve("libempty.so");
        Files.write(empty, new byte[0]);
        assertTrue(assertThrows(IOException.class, () -> ElfFile.read(empty)).getMessage().contains("too short"));

        Gcc.assumeAvailable();
        Path lib = Gcc.sharedLibrary(tmp, "libfull.so", "int g(void){return 1;}\n");
        byte[] all = Files.readAllBytes(lib);
        Path cut = tmp.resolve("libcut.so");
        Files.write(cut, Arrays.copyOf(all, all.length / 2)); // section headers live at the end
        IOException e2 = assertThrows(IOException.class, () -> ElfFile.read(cut).needed());
        assertTrue(e2.getMessage().contains("truncated"), e2.getMessage());
        assertFalse(e2.getMessage().isBlank());
    }

    static String run(String... cmd) {
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes());
            return p.waitFor() == 0 ? out : null;
        } catch (IOException | InterruptedException e) {
            return null;
        }
    }
}
