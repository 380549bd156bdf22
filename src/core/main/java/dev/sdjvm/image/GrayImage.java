package dev.sdjvm.image;

import java.nio.ByteBuffer;
import java.util.Arrays;

/**
 * An 8-bit grey image (Pillow's mode {@code L}), row-major bytes. Immutable: the constructor copies the bytes it is
 * given and {@link #gray()} returns a copy ({@link #grayBuffer()} is a read-only view). Two images are equal when
 * their sizes and pixels are.
 */
public final class GrayImage {
    private final int width;
    private final int height;
    private final byte[] gray;

    /**
     * Checks the size and copies the pixels.
     *
     * @param width  width in pixels, &gt;= 1
     * @param height height in pixels, &gt;= 1
     * @param gray   exactly {@code height*width} bytes, one per pixel (copied)
     * @throws IllegalArgumentException if the sizes do not match
     */
    public GrayImage(int width, int height, byte[] gray) {
        this(width, height, check(width, height, gray).clone(), null);
    }

    private GrayImage(int width, int height, byte[] owned, Void unused) {
        this.width = width;
        this.height = height;
        this.gray = owned;
    }

    private static byte[] check(int width, int height, byte[] gray) {
        if (width < 1 || height < 1 || gray == null || (long) width * height != gray.length) {
            throw new IllegalArgumentException("need " + width + "x" + height + " bytes, got "
                    + (gray == null ? "null" : gray.length));
        }
        return gray;
    }

    /** An image that takes ownership of {@code gray} (no copy): for this package's own new arrays only. */
    static GrayImage wrap(int width, int height, byte[] gray) {
        return new GrayImage(width, height, check(width, height, gray), null);
    }

    /** The pixels themselves, for this package's read-only use. */
    byte[] data() {
        return gray;
    }

    /** {@return the width in pixels} */
    public int width() {
        return width;
    }

    /** {@return the height in pixels} */
    public int height() {
        return height;
    }

    /** {@return a copy of the {@code height*width} bytes, one per pixel, row after row} */
    public byte[] gray() {
        return gray.clone();
    }

    /** {@return the pixels as a read-only buffer (no copy), one byte per pixel, row after row} */
    public ByteBuffer grayBuffer() {
        return ByteBuffer.wrap(gray).asReadOnlyBuffer();
    }

    /**
     * {@return the value 0..255 at (x, y)}
     *
     * @param x column, 0..width-1
     * @param y row, 0..height-1
     */
    public int get(int x, int y) {
        return gray[y * width + x] & 0xff;
    }

    /**
     * Converts as Pillow's {@code image.convert("L")} on an RGB image (ITU-R 601-2 luma in its 16-bit fixed point):
     * {@code L = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16}.
     *
     * @param image an RGB image
     * @return its grey version
     */
    public static GrayImage fromRgb(RgbImage image) {
        byte[] rgb = image.data();
        byte[] out = new byte[image.width() * image.height()];
        for (int i = 0; i < out.length; i++) {
            out[i] = (byte) luma(rgb[i * 3] & 0xff, rgb[i * 3 + 1] & 0xff, rgb[i * 3 + 2] & 0xff);
        }
        return wrap(image.width(), image.height(), out);
    }

    /**
     * {@return this image as RGB, each grey value in the three channels (Pillow's {@code convert("RGB")} on an
     * {@code L} image; {@link #fromRgb} gives the same bytes back)}
     */
    public RgbImage toRgb() {
        byte[] out = new byte[gray.length * 3];
        for (int i = 0; i < gray.length; i++) {
            out[i * 3] = gray[i];
            out[i * 3 + 1] = gray[i];
            out[i * 3 + 2] = gray[i];
        }
        return RgbImage.wrap(width, height, out);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof GrayImage i && i.width == width && i.height == height && Arrays.equals(i.gray, gray);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * width + height) + Arrays.hashCode(gray);
    }

    @Override
    public String toString() {
        return "GrayImage[" + width + "x" + height + "]";
    }

    /** Pillow's {@code L24(rgb) >> 16} (Convert.c's {@code rgb2l}). */
    static int luma(int r, int g, int b) {
        return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
    }
}
