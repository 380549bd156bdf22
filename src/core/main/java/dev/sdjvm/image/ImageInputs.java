package dev.sdjvm.image;

import dev.sdjvm.errors.InvalidRequestException;
import dev.sdjvm.errors.RequestLimitException;
import java.awt.image.BufferedImage;
import java.awt.image.ColorModel;
import java.awt.image.IndexColorModel;
import java.awt.image.Raster;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;

/**
 * Encoded images (PNG, JPEG) to the 8-bit RGB that diffusers' {@code load_image} hands a pipeline:
 * {@code PIL.Image.open(...).convert("RGB")}, with raw sample values (no colour management, like Pillow).
 *
 * <p>What Pillow's {@code convert("RGB")} does per PNG kind, and so this class: RGB and grey 8-bit as they are (grey
 * replicated); 1, 2 and 4-bit grey scaled to 0..255 (x255, x85, x17); palette images looked up in their palette;
 * alpha dropped (not composited); 16-bit RGB, RGBA and grey+alpha keep their high byte; 16-bit grey without alpha is
 * clamped to 255 (Pillow opens it as a 32-bit integer image and clips it to 8 bits, so values above 255 saturate).
 * JPEGs are decoded by the JDK's libjpeg (islow IDCT, fancy upsampling), which gave Pillow's (libjpeg-turbo's) bytes
 * exactly for the 4:4:4, 4:2:2, 4:2:0, progressive and grey files tested; CMYK JPEGs are rejected. A JPEG truncated
 * inside its data is rejected (Pillow: "image file is truncated"). The EXIF orientation is not applied
 * ({@code Image.open} does not apply it either; {@code load_image} does). Other formats the JDK reads (BMP, GIF,
 * TIFF) are accepted, first frame only, and were not compared with Pillow.
 */
public final class ImageInputs {
    /** Pillow's {@code DecompressionBombError} threshold: {@code 2 * Image.MAX_IMAGE_PIXELS}. */
    public static final long MAX_PIXELS = 2L * 89_478_485L;

    private ImageInputs() {
    }

    /**
     * Decodes an image given as the bytes of a file; a problem is reported against the field {@code image}.
     *
     * @param encoded the PNG or JPEG bytes
     * @return the image as 8-bit RGB
     * @throws InvalidRequestException if the bytes are empty, not an image the JDK reads, corrupt or truncated,
     *                                 of an unsupported kind (CMYK), without pixels or above {@link #MAX_PIXELS}
     */
    public static RgbImage decode(byte[] encoded) {
        return decode(encoded, "image");
    }

    /**
     * Decodes an image given as the bytes of a file.
     *
     * @param encoded the PNG or JPEG bytes
     * @param field   the request field the bytes came from, named in the exception (e.g. {@code mask_image}); or
     *                null
     * @return the image as 8-bit RGB
     * @throws InvalidRequestException if the bytes are empty, not an image the JDK reads, corrupt or truncated,
     *                                 of an unsupported kind (CMYK), without pixels or above {@link #MAX_PIXELS}
     */
    public static RgbImage decode(byte[] encoded, String field) {
        return decode(encoded, field, MAX_PIXELS);
    }

    /**
     * Decodes an image given as the bytes of a file, refusing one of more than {@code maxPixels} pixels from its
     * header, before its pixels are decoded (a small compressed file can hold a huge image).
     *
     * @param encoded   the PNG or JPEG bytes
     * @param field     the request field the bytes came from, named in the exception; or null
     * @param maxPixels the largest width x height accepted, e.g. a work budget's {@code max_image_pixels}
     * @return the image as 8-bit RGB
     * @throws RequestLimitException   (limit {@code max_image_pixels}) for an image above {@code maxPixels} pixels
     *                                 (but not above {@link #MAX_PIXELS})
     * @throws InvalidRequestException if the bytes are empty, not an image the JDK reads, corrupt or truncated,
     *                                 of an unsupported kind (CMYK), without pixels or above {@link #MAX_PIXELS}
     */
    public static RgbImage decode(byte[] encoded, String field, long maxPixels) {
        Objects.requireNonNull(encoded, "encoded");
        if (encoded.length == 0) {
            throw new InvalidRequestException(field, "the image is empty (0 bytes)");
        }
        try (ImageInputStream in = ImageIO.createImageInputStream(new ByteArrayInputStream(encoded))) {
            Iterator<ImageReader> readers = ImageIO.getImageReaders(in);
            if (!readers.hasNext()) {
                throw new InvalidRequestException(field, "not a PNG or JPEG image (" + encoded.length
                        + " bytes starting " + hex(encoded) + ")");
            }
            ImageReader reader = readers.next();
            String format = reader.getFormatName().toUpperCase(Locale.ROOT);
            try {
                reader.setInput(in, true, true);
                int w = reader.getWidth(0);
                int h = reader.getHeight(0);
                if (w < 1 || h < 1) {
                    throw new InvalidRequestException(field, "the " + format + " image has no pixels (" + w + "x"
                            + h + ")");
                }
                if ((long) w * h > MAX_PIXELS) {
                    throw new InvalidRequestException(field, "the " + format + " image is " + w + "x" + h + " = "
                            + (long) w * h + " pixels, above the " + MAX_PIXELS + " Pillow accepts");
                }
                if ((long) w * h > maxPixels) {
                    throw new RequestLimitException(field, "max_image_pixels", "the " + format + " image is " + w
                            + "x" + h + " = " + (long) w * h + " pixels, over the limit max_image_pixels = "
                            + maxPixels);
                }
                List<String> warnings = new ArrayList<>();
                reader.addIIOReadWarningListener((source, warning) -> warnings.add(warning));
                BufferedImage image = reader.read(0);
                for (String warning : warnings) {
                    if (warning.toLowerCase(Locale.ROOT).contains("premature end")) {
                        throw new InvalidRequestException(field, "the " + format + " image is truncated ("
                                + warning + ")");
                    }
                }
                return toRgb(image, field);
            } finally {
                reader.dispose();
            }
        } catch (IOException | RuntimeException e) {
            if (e instanceof InvalidRequestException ire) {
                throw ire;
            }
            String message = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
            if (message.contains("Unsupported Image Type")) {
                message += " (a CMYK or YCCK JPEG? convert it to RGB)";
            }
            InvalidRequestException ire = new InvalidRequestException(field, "the image cannot be decoded: "
                    + message);
            ire.initCause(e);
            throw ire;
        }
    }

    /**
     * Converts a decoded image to 8-bit RGB from its raster's raw samples, as Pillow's {@code convert("RGB")} would
     * convert the same pixels (see the class comment); the colour space is ignored (no colour management). Never use
     * {@link BufferedImage#getRGB} for this: it maps grey images through a gamma curve.
     *
     * @param image any image with 1 (grey) or 3 (RGB) colour components, with or without alpha, or a palette image
     * @return the image as 8-bit RGB
     * @throws InvalidRequestException if the image has another number of colour components (e.g. CMYK) or samples
     *                                 of other than 1, 2, 4, 8 or 16 bits
     */
    public static RgbImage fromBufferedImage(BufferedImage image) {
        return toRgb(image, "image");
    }

    /**
     * {@link #fromBufferedImage(BufferedImage)} reporting a problem against another request field.
     *
     * @param image any image with 1 (grey) or 3 (RGB) colour components, with or without alpha, or a palette image
     * @param field the request field the image came from, named in the exception (e.g. {@code mask_image})
     * @return the image as 8-bit RGB
     * @throws InvalidRequestException if the image has another number of colour components (e.g. CMYK) or samples
     *                                 of other than 1, 2, 4, 8 or 16 bits
     */
    public static RgbImage fromBufferedImage(BufferedImage image, String field) {
        return toRgb(image, field);
    }

    private static RgbImage toRgb(BufferedImage image, String field) {
        int w = image.getWidth();
        int h = image.getHeight();
        Raster raster = image.getRaster();
        ColorModel cm = image.getColorModel();
        byte[] out = new byte[w * h * 3];
        int[] row = new int[w * raster.getNumBands()];
        if (cm instanceof IndexColorModel icm) {
            for (int y = 0; y < h; y++) {
                raster.getSamples(0, y, w, 1, 0, row);
                for (int x = 0; x < w; x++) {
                    int i = (y * w + x) * 3;
                    int index = row[x];
                    out[i] = (byte) icm.getRed(index);
                    out[i + 1] = (byte) icm.getGreen(index);
                    out[i + 2] = (byte) icm.getBlue(index);
                }
            }
            return RgbImage.wrap(w, h, out);
        }
        int colors = cm.getNumColorComponents();
        int bits = raster.getSampleModel().getSampleSize(0);
        if (colors != 1 && colors != 3) {
            throw new InvalidRequestException(field, "images with " + colors + " colour components ("
                    + cm.getColorSpace().getType() + " colour space, e.g. CMYK) are not supported; convert to RGB");
        }
        if (bits != 1 && bits != 2 && bits != 4 && bits != 8 && bits != 16) {
            throw new InvalidRequestException(field, bits + "-bit samples are not supported");
        }
        int bands = raster.getNumBands();
        for (int y = 0; y < h; y++) {
            raster.getPixels(0, y, w, 1, row);
            for (int x = 0; x < w; x++) {
                int i = (y * w + x) * 3;
                int p = x * bands;
                if (colors == 3) {
                    out[i] = (byte) to8(row[p], bits, false);
                    out[i + 1] = (byte) to8(row[p + 1], bits, false);
                    out[i + 2] = (byte) to8(row[p + 2], bits, false);
                } else {
                    byte v = (byte) to8(row[p], bits, !cm.hasAlpha());
                    out[i] = v;
                    out[i + 1] = v;
                    out[i + 2] = v;
                }
            }
        }
        return RgbImage.wrap(w, h, out);
    }

    /** One sample to 8 bits as Pillow unpacks and converts it (see the class comment). */
    private static int to8(int v, int bits, boolean clampSixteen) {
        switch (bits) {
            case 8:
                return v;
            case 16:
                return clampSixteen ? Math.min(v, 255) : v >> 8;
            default:
                return v * 255 / ((1 << bits) - 1);
        }
    }

    private static String hex(byte[] b) {
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < Math.min(8, b.length); i++) {
            s.append(String.format("%02x", b[i] & 0xff));
        }
        return s.toString();
    }
}
