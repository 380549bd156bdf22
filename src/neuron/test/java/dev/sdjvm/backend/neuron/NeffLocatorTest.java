package dev.sdjvm.backend.neuron;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.jna.Memory;
import dev.sdjvm.errors.ModelLoadException;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Finding a NEFF by its documented header, wherever and however it is packed. */
class NeffLocatorTest {
    @TempDir
    Path tmp;

    static final byte[] NEFF = NeffFiles.neffWithProgram("unet", "nrtsim 1\nfn echo\nin input0 float32 2\nout output0 float32 2\n");

    @Test
    void headerFieldsAreReadAtTheirDocumentedOffsets() {
        NeffHeader h = NeffHeader.parse(NEFF, 0);
        assertEquals(1024, h.headerSize());
        assertEquals(NEFF.length - 1024, h.dataSize());
        assertEquals(NEFF.length, h.totalSize());
        assertEquals(2, h.versionMajor());
        assertEquals("unet", h.name());
        assertEquals("sdjvm-test", h.buildVersion());
        assertEquals(64, h.hash().length());
        assertTrue(NeffHeader.isHeaderAt(NEFF, 0, NEFF.length));
        assertTrue(!NeffHeader.isHeaderAt(NEFF, 0, NEFF.length - 1), "the tarball must fit in what is there");
    }

    @Test
    void aDamagedTarBlockIsNotANeff() {
        byte[] b = NEFF.clone();
        b[1024 + 3] ^= 0x20;  // a byte of the first member's name: the checksum no longer holds
        assertTrue(!NeffHeader.isHeaderAt(b, 0, b.length));
    }

    @Test
    void scanFindsNeffsAtAnyOffsetAcrossWindowBoundariesAndSkipsTheirBodies() throws Exception {
        Random r = new Random(5);
        for (int pad : new int[] {0, 1, 7, 13, (1 << 20) - 700, (1 << 20) - 9, (1 << 20) + 3}) {
            byte[] prefix = new byte[pad];
            r.nextBytes(prefix);
            byte[] suffix = new byte[3000];
            r.nextBytes(suffix);
            byte[] data = NeffFiles.embed(prefix, NEFF, suffix);
            List<long[]> hits = NeffLocator.scan(new ByteArrayInputStream(data), data.length);
            assertEquals(1, hits.size(), "pad " + pad);
            assertEquals(pad, hits.get(0)[0], "pad " + pad);
        }
        // two NEFFs back to back, and a NEFF inside another NEFF's body is not reported (the body is skipped)
        byte[] two = NeffFiles.embed(NEFF, NEFF, new byte[0]);
        List<long[]> hits = NeffLocator.scan(new ByteArrayInputStream(two), two.length);
        assertEquals(2, hits.size());
        assertEquals(NEFF.length, hits.get(1)[0]);
        byte[] nested = NeffFiles.neff("outer", NeffFiles.tar(Map.of("inner.neff", NEFF)));
        assertEquals(1, NeffLocator.scan(new ByteArrayInputStream(nested), nested.length).size());
    }

    @Test
    void randomDataAndWeightsAreNotMistakenForANeff() throws Exception {
        byte[] noise = new byte[3 << 20];
        new Random(11).nextBytes(noise);
        // sprinkle the header_size pattern (00 04 00 00 00 00 00 00) without a valid tarball behind it
        for (int i = 100; i < noise.length - 16; i += 4099) {
            System.arraycopy(new byte[] {0, 4, 0, 0, 0, 0, 0, 0}, 0, noise, i, 8);
        }
        assertEquals(0, NeffLocator.scan(new ByteArrayInputStream(noise), noise.length).size());
    }

    @Test
    void neffInsideATorchScriptArchiveStoredOrDeflatedOrInline() throws Exception {
        for (boolean deflate : new boolean[] {false, true}) {
            // as its own record (a uint8 tensor) and as raw bytes inline in a pickle
            Map<String, byte[]> records = new LinkedHashMap<>();
            records.put("unet/data.pkl", NeffFiles.embed("\u0080\u0002cneuron\nModel\nX".getBytes(StandardCharsets.ISO_8859_1),
                    NEFF, ".".getBytes(StandardCharsets.US_ASCII)));
            records.put("unet/code/__torch__.py", "def forward(self, x): ...".getBytes(StandardCharsets.UTF_8));
            records.put("unet/version", "3\n".getBytes(StandardCharsets.UTF_8));
            Path pt = tmp.resolve("inline-" + deflate + ".pt");
            NeffFiles.zip(pt, records, deflate);
            NeffLocator.NeffSource s = NeffLocator.inArtifact(pt).orElseThrow();
            assertEquals("unet/data.pkl", s.entry());
            assertTrue(s.describe().contains("record 'unet/data.pkl'"), s.describe());
            try (Memory m = s.load()) {
                assertArrayEquals(NEFF, m.getByteArray(0, NEFF.length));
            }
            Map<String, byte[]> tensor = new LinkedHashMap<>();
            tensor.put("unet/data.pkl", new byte[] {(byte) 0x80, 2, '.'});
            tensor.put("unet/data/0", NEFF);
            Path pt2 = tmp.resolve("tensor-" + deflate + ".pt");
            NeffFiles.zip(pt2, tensor, deflate);
            NeffLocator.NeffSource s2 = NeffLocator.inArtifact(pt2).orElseThrow();
            assertEquals("unet/data/0", s2.entry());
            assertEquals(0, s2.offset());
            try (Memory m = s2.load()) {
                assertArrayEquals(NEFF, m.getByteArray(0, NEFF.length));
            }
        }
    }

    @Test
    void aPtWithoutNeffIsEmptyAndTwoDifferentNeffsAreAnError() throws Exception {
        Path none = tmp.resolve("cpu.pt");
        NeffFiles.zip(none, Map.of("m/data.pkl", new byte[] {1, 2, 3}, "m/data/0", new byte[4096]), false);
        assertTrue(NeffLocator.inArtifact(none).isEmpty());
        Path two = tmp.resolve("two.pt");
        byte[] other = NeffFiles.neffWithProgram("other", "nrtsim 1\nfn echo\n");
        NeffFiles.zip(two, Map.of("m/data/0", NEFF, "m/data/1", other), false);
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> NeffLocator.inArtifact(two));
        assertTrue(e.getMessage().contains("2 different NEFFs"), e.getMessage());
        Path same = tmp.resolve("same.pt");
        NeffFiles.zip(same, Map.of("m/data/0", NEFF, "m/data/1", NEFF), false);
        assertTrue(NeffLocator.inArtifact(same).isPresent(), "the same NEFF twice is one NEFF");
    }

    @Test
    void aBareNeffFileAndAFileThatIsNotOne() throws Exception {
        Path f = tmp.resolve("unet.neff");
        Files.write(f, NEFF);
        NeffLocator.NeffSource s = NeffLocator.neffFile(f, "beside");
        assertNull(s.entry());
        assertEquals(NEFF.length, s.header().totalSize());
        Path bad = tmp.resolve("bad.neff");
        Files.write(bad, new byte[4096]);
        assertTrue(assertThrows(ModelLoadException.class, () -> NeffLocator.neffFile(bad, "beside")).getMessage()
                .contains("not a NEFF"));
        Path cut = tmp.resolve("cut.neff");
        Files.write(cut, java.util.Arrays.copyOf(NEFF, NEFF.length - 512));
        assertThrows(ModelLoadException.class, () -> NeffLocator.neffFile(cut, "beside"));
    }

    @Test
    void aNeffBesideThePtThatDiffersFromTheOneInsideIsReported() throws Exception {
        Map<String, byte[]> records = new LinkedHashMap<>();
        records.put("unet/data.pkl", new byte[] {(byte) 0x80, 2, '.'});
        records.put("unet/data/0", NEFF);
        Path dir = Files.createDirectories(tmp.resolve("beside"));
        Path pt = dir.resolve("unet.pt");
        NeffFiles.zip(pt, records, false);
        NeffLocator.NeffSource inside = NeffLocator.inArtifact(pt).orElseThrow();
        assertTrue(inside.describe().endsWith("inside the .pt"), inside.describe());
        assertEquals(64, inside.sha256().length());
        Files.write(dir.resolve("unet.neff"), NEFF);
        assertEquals(java.util.List.of(), NeffLocator.warnIfBesideDiffers(inside, pt), "the same bytes: nothing to say");
        byte[] other = NeffFiles.neffWithProgram("unet", "nrtsim 1\nfn echo\nin input0 float32 3\nout output0 float32 3\n");
        Files.write(dir.resolve("graph.neff"), other);
        assertEquals(java.util.List.of(dir.resolve("graph.neff")), NeffLocator.warnIfBesideDiffers(inside, pt));
    }
}
