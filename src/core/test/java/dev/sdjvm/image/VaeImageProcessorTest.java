package dev.sdjvm.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.sdjvm.errors.InvalidRequestException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@link VaeImageProcessor} against diffusers' {@code VaeImageProcessor.preprocess} as computed by Pillow 9.4, numpy
 * and torch in the fixture script: every float32 equal bit for bit (tolerance 0: the resize is integer arithmetic and
 * {@code 2 * (v / 255) - 1} is the same three IEEE float32 operations in Java as in numpy and torch).
 */
class VaeImageProcessorTest {
    static Stream<Arguments> diffusersCases() {
        return Fixtures.cases("preprocess_cases.txt").stream().map(c -> Arguments.of(c[0], c[1], c[2], c[3], c[4],
                Integer.parseInt(c[5]), Integer.parseInt(c[6]), Integer.parseInt(c[7])));
    }

    @ParameterizedTest(name = "{1} {0} height={2} width={3}")
    @MethodSource("diffusersCases")
    void matchesDiffusersBitForBit(String input, String kind, String height, String width, String expected,
            int channels, int h, int w) {
        RgbImage image = Fixtures.rgb(input);
        FloatImage out;
        if (kind.equals("image")) {
            out = height.equals("-") ? VaeImageProcessor.preprocess(image)
                    : VaeImageProcessor.preprocess(image, Integer.parseInt(height), Integer.parseInt(width));
        } else {
            out = VaeImageProcessor.preprocessMask(image, Integer.parseInt(height), Integer.parseInt(width));
        }
        assertEquals(channels, out.channels());
        assertEquals(h, out.height());
        assertEquals(w, out.width());
        float[] want = floats(Fixtures.bytes(expected));
        assertEquals(want.length, out.chw().length);
        for (int i = 0; i < want.length; i++) {
            if (Float.floatToRawIntBits(want[i]) != Float.floatToRawIntBits(out.chw()[i])) {
                fail(expected + "[" + i + "]: expected " + want[i] + ", got " + out.chw()[i]);
            }
        }
    }

    @Test
    void aGreyMaskGivesWhatItsRgbCopyGives() {
        GrayImage grey = Fixtures.gray("pre_mask_gray_45x37.png");
        FloatImage fromGrey = VaeImageProcessor.preprocessMask(grey, 50, 27);
        FloatImage fromRgb = VaeImageProcessor.preprocessMask(Fixtures.rgb("pre_mask_gray_45x37.png"), 50, 27);
        assertEquals(java.util.Arrays.toString(fromRgb.chw()), java.util.Arrays.toString(fromGrey.chw()));
    }

    @Test
    void everyByteValueNormalisesAsFloat32Does() {
        byte[] rgb = new byte[256 * 3];
        for (int i = 0; i < rgb.length; i++) {
            rgb[i] = (byte) (i / 3);
        }
        FloatImage out = VaeImageProcessor.normalize(new RgbImage(256, 1, rgb));
        assertEquals(-1f, out.get(0, 0, 0));
        assertEquals(1f, out.get(2, 0, 255));
        for (int v = 0; v < 256; v++) {
            assertEquals((float) (2.0 * (float) (v / 255.0) - 1.0), out.get(1, 0, v), "value " + v);
        }
    }

    @Test
    void binarizeThresholdIs128() {
        byte[] g = new byte[256];
        for (int i = 0; i < 256; i++) {
            g[i] = (byte) i;
        }
        FloatImage out = VaeImageProcessor.binarize(new GrayImage(256, 1, g));
        for (int v = 0; v < 256; v++) {
            assertEquals(v < 128 ? 0f : 1f, out.chw()[v], "value " + v);
        }
    }

    @Test
    void convertToLMatchesPillow() {
        GrayImage mine = GrayImage.fromRgb(Fixtures.rgb("rgb_64x64.png"));
        GrayImage pillow = Fixtures.gray("convert_L_rgb_64x64.png");
        assertEquals(null, Fixtures.firstDifference(pillow.gray(), mine.gray(), 64, 1));
    }

    @Test
    void sizesBelowTheScaleFactorAreRejected() {
        RgbImage image = Fixtures.rgb("rgb_7x1.png");
        InvalidRequestException e = assertThrows(InvalidRequestException.class,
                () -> VaeImageProcessor.preprocess(image));
        assertEquals("image", e.field());
        assertTrue(e.getMessage().contains("below 8"), e.getMessage());
        e = assertThrows(InvalidRequestException.class, () -> VaeImageProcessor.preprocess(image, 512, 7));
        assertEquals("width", e.field());
        e = assertThrows(InvalidRequestException.class, () -> VaeImageProcessor.preprocessMask(image, 0, 512));
        assertEquals("height", e.field());
    }

    @Test
    void requestedSizesAreFlooredToMultiplesOfEight() {
        FloatImage out = VaeImageProcessor.preprocess(Fixtures.rgb("rgb_7x1.png"), 15, 9);
        assertEquals(8, out.height());
        assertEquals(8, out.width());
    }

    private static float[] floats(byte[] b) {
        float[] f = new float[b.length / 4];
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(f);
        return f;
    }
}
