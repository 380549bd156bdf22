package dev.sdjvm.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdjvm.errors.InvalidRequestException;
import java.awt.image.BufferedImage;
import java.util.Arrays;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** {@link ImageInputs} against Pillow 9.4's {@code Image.open(...).convert("RGB")}: every byte equal. */
class ImageInputsTest {
    static Stream<Arguments> pillowCases() {
        return Fixtures.cases("decode_cases.txt").stream()
                .map(c -> Arguments.of(c[0], Integer.parseInt(c[1]), Integer.parseInt(c[2]), c[3], c[4]));
    }

    @ParameterizedTest(name = "{0} (Pillow mode {4})")
    @MethodSource("pillowCases")
    void decodesAsPillowConvertsToRgb(String input, int width, int height, String expected, String pillowMode) {
        RgbImage image = ImageInputs.decode(Fixtures.bytes(input));
        assertEquals(width, image.width());
        assertEquals(height, image.height());
        assertNull(Fixtures.firstDifference(Fixtures.bytes(expected), image.rgb(), width, 3), input);
    }

    @Test
    void sixteenBitGreySaturatesAsPillowDoes() {
        RgbImage image = ImageInputs.decode(Fixtures.bytes("png_gray16.png"));
        // row 0 holds 0..18, row 1 holds 250..268 (see the fixture script)
        for (int x = 0; x < image.width(); x++) {
            assertEquals(x, image.get(x, 0, 0));
            assertEquals(Math.min(250 + x, 255), image.get(x, 1, 1));
        }
    }

    @Test
    void greyPngsKeepTheirRawValuesWhereGetRgbWouldNot() {
        // the reason the raster is read: BufferedImage.getRGB maps linear-grey samples through a gamma curve
        byte[] png = Fixtures.bytes("png_gray8.png");
        RgbImage image = ImageInputs.decode(png);
        byte[] expected = Fixtures.bytes("png_gray8.rgb");
        assertNull(Fixtures.firstDifference(expected, image.rgb(), image.width(), 3));
    }

    @Test
    void fromBufferedImageReadsSamplesNotColours() {
        BufferedImage grey = new BufferedImage(3, 1, BufferedImage.TYPE_BYTE_GRAY);
        grey.getRaster().setPixels(0, 0, 3, 1, new int[] {0, 100, 255});
        RgbImage rgb = ImageInputs.fromBufferedImage(grey);
        assertEquals(100, rgb.get(1, 0, 0));
        assertEquals(100, rgb.get(1, 0, 2));
        BufferedImage argb = new BufferedImage(1, 1, BufferedImage.TYPE_INT_ARGB);
        argb.setRGB(0, 0, 0x10203040);
        rgb = ImageInputs.fromBufferedImage(argb);
        assertEquals(0x20, rgb.get(0, 0, 0));
        assertEquals(0x30, rgb.get(0, 0, 1));
        assertEquals(0x40, rgb.get(0, 0, 2));
    }

    @Test
    void emptyBytesAreRejected() {
        InvalidRequestException e = assertThrows(InvalidRequestException.class,
                () -> ImageInputs.decode(new byte[0], "mask_image"));
        assertEquals("mask_image", e.field());
        assertTrue(e.getMessage().contains("empty"), e.getMessage());
    }

    @Test
    void bytesThatAreNoImageAreRejected() {
        InvalidRequestException e = assertThrows(InvalidRequestException.class,
                () -> ImageInputs.decode("hello, world".getBytes(java.nio.charset.StandardCharsets.US_ASCII)));
        assertEquals("image", e.field());
        assertTrue(e.getMessage().contains("not a PNG or JPEG") && e.getMessage().contains("68656c6c"),
                e.getMessage());
    }

    @Test
    void truncatedPngIsRejected() {
        byte[] png = Fixtures.bytes("rgb_64x64.png");
        InvalidRequestException e = assertThrows(InvalidRequestException.class,
                () -> ImageInputs.decode(Arrays.copyOf(png, png.length / 2)));
        assertEquals("image", e.field());
        assertTrue(e.getMessage().startsWith("image: the image cannot be decoded"), e.getMessage());
    }

    @Test
    void truncatedJpegIsRejected() {
        byte[] jpeg = Fixtures.bytes("jpeg_444.jpg");
        InvalidRequestException e = assertThrows(InvalidRequestException.class,
                () -> ImageInputs.decode(Arrays.copyOf(jpeg, jpeg.length * 2 / 3)));
        assertTrue(e.getMessage().contains("truncated") || e.getMessage().contains("cannot be decoded"),
                e.getMessage());
    }

    @Test
    void aPngWithoutPixelsIsRejected() {
        // a PNG header announcing 0x0 pixels
        byte[] png = Fixtures.bytes("rgb_7x1.png").clone();
        Arrays.fill(png, 16, 24, (byte) 0);
        InvalidRequestException e = assertThrows(InvalidRequestException.class, () -> ImageInputs.decode(png));
        assertEquals("image", e.field());
    }
}
