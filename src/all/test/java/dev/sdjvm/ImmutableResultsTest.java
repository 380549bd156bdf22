package dev.sdjvm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdjvm.image.FloatImage;
import dev.sdjvm.image.GrayImage;
import dev.sdjvm.image.RgbImage;
import dev.sdjvm.tokenizer.Encoding;
import java.nio.ReadOnlyBufferException;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * What the API hands out cannot change what it came from: every array an accessor returns is a copy (or a read-only
 * view), and every array a constructor takes is copied. Each test changes what it gave or got, then reads again.
 */
class ImmutableResultsTest {
    private static final byte[] PIXELS = {1, 2, 3, 4, 5, 6};

    @Test
    void rgbImagePixelsCannotBeChangedThroughTheConstructorOrTheAccessor() {
        byte[] given = PIXELS.clone();
        RgbImage img = new RgbImage(2, 1, given);
        given[0] = 99;
        assertEquals(1, img.get(0, 0, 0), "the constructor copies");
        byte[] got = img.rgb();
        got[1] = 99;
        assertArrayEquals(PIXELS, img.rgb(), "the accessor returns a copy");
        assertEquals(2, img.get(0, 0, 1));
        var buf = img.rgbBuffer();
        assertTrue(buf.isReadOnly());
        assertThrows(ReadOnlyBufferException.class, () -> buf.put(0, (byte) 99));
        assertEquals(6, buf.get(5));
        // equality is by value, as a record's would be for its components
        assertEquals(new RgbImage(2, 1, PIXELS.clone()), img);
        assertEquals(new RgbImage(2, 1, PIXELS.clone()).hashCode(), img.hashCode());
        assertNotEquals(new RgbImage(1, 2, PIXELS.clone()), img);
        // what is derived from it is independent of it
        var bi = img.toBufferedImage();
        bi.setRGB(0, 0, 0);
        assertArrayEquals(PIXELS, img.rgb());
    }

    @Test
    void grayAndFloatImagesCannotBeChangedEither() {
        byte[] g = {10, 20};
        GrayImage gray = new GrayImage(2, 1, g);
        g[0] = 0;
        gray.gray()[1] = 0;
        assertArrayEquals(new byte[] {10, 20}, gray.gray());
        assertThrows(ReadOnlyBufferException.class, () -> gray.grayBuffer().put(0, (byte) 1));
        RgbImage rgb = gray.toRgb();
        rgb.rgb()[0] = 0;
        assertArrayEquals(new byte[] {10, 10, 10, 20, 20, 20}, gray.toRgb().rgb());
        assertEquals(gray.toRgb(), rgb);

        float[] v = {0.5f, -1f};
        FloatImage f = new FloatImage(1, 1, 2, v);
        v[0] = 7;
        f.chw()[1] = 7;
        assertArrayEquals(new float[] {0.5f, -1f}, f.chw());
        assertEquals(0.5f, f.get(0, 0, 0));
        assertThrows(ReadOnlyBufferException.class, () -> f.chwBuffer().put(0, 1f));
    }

    @Test
    void aResultKeepsItsLatentsAndImages() {
        float[] latents = {1, 2, 3, 4};
        List<RgbImage> images = new ArrayList<>(List.of(new RgbImage(2, 1, PIXELS.clone())));
        var r = GenerationResult.builder().images(images).seed(7).latents(latents)
                .timings(new GenerationResult.Timings(0, 0, 0, 0, 0, 0, 1)).scheduler("EulerDiscreteScheduler")
                .request(GenerationRequest.of("x")).build();
        latents[0] = Float.NaN;
        images.clear();
        assertArrayEquals(new float[] {1, 2, 3, 4}, r.latents());
        r.latents()[2] = Float.NaN;
        assertArrayEquals(new float[] {1, 2, 3, 4}, r.latents());
        assertEquals(1, r.images().size());
        assertThrows(UnsupportedOperationException.class, () -> r.images().clear());
        r.images().get(0).rgb()[0] = 99;
        assertArrayEquals(PIXELS, r.images().get(0).rgb());
    }

    @Test
    void anEncodingKeepsItsIds() {
        int[] ids = {49406, 320, 49407};
        Encoding e = new Encoding(ids, 1, false);
        ids[1] = 0;
        e.inputIds()[1] = 0;
        assertArrayEquals(new int[] {49406, 320, 49407}, e.inputIds());
    }
}
