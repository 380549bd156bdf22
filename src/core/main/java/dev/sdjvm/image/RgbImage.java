package dev.sdjvm.image;

import java.awt.image.BufferedImage;
import java.awt.image.DataBufferByte;
import java.nio.ByteBuffer;
import java.util.Arrays;

/**
 * An 8-bit RGB image, row-major HWC bytes (what diffusers' {@code numpy_to_pil} receives). Immutable: the
 * constructor copies the bytes it is given and {@link #rgb()} returns a copy ({@link #rgbBuffer()} is a read-only
 * view without copying). Two images are equal when their sizes and pixels are.
 */
public final class RgbImage {
    private final int width;
    private final int height;
    private final byte[] rgb;

    /**
     * Checks the size and copies the pixels.
     *
     * @param width  width in pixels, &gt;= 1
     * @param height height in pixels, &gt;= 1
     * @param rgb    exactly {@code height*width*3} bytes, R G B per pixel (copied)
     * @throws IllegalArgumentException if the sizes do not match
     */
    public RgbImage(int width, int height, byte[] rgb) {
        this(width, height, check(width, height, rgb).clone(), null);
    }

    private RgbImage(int width, int height, byte[] owned, Void unused) {
        this.width = width;
        this.height = height;
        this.rgb = owned;
    }

    private static byte[] check(int width, int height, byte[] rgb) {
        if (width < 1 || height < 1 || rgb == null || rgb.length != (long) width * height * 3) {
            throw new IllegalArgumentException("need " + width + "x" + height + "x3 bytes, got "
                    + (rgb == null ? "null" : rgb.length));
        }
        return rgb;
    }

    /** An image that takes ownership of {@code rgb} (no copy): for this package's own new arrays only. */
    static RgbImage wrap(int width, int height, byte[] rgb) {
        return new RgbImage(width, height, check(width, height, rgb), null);
    }

    /** The pixels themselves, for this package's read-only use. */
    byte[] data() {
        return rgb;
    }

    /** {@return the width in pixels} */
    public int width() {
        return width;
    }

    /** {@return the height in pixels} */
    public int height() {
        return height;
    }

    /** {@return a copy of the {@code height*width*3} bytes, R G B per pixel, row after row} */
    public byte[] rgb() {
        return rgb.clone();
    }

    /** {@return the pixels as a read-only buffer (no copy), R G B per pixel, row after row} */
    public ByteBuffer rgbBuffer() {
        return ByteBuffer.wrap(rgb).asReadOnlyBuffer();
    }

    /**
     * {@return the channel value 0..255 at (x, y)}
     *
     * @param x       column, 0..width-1
     * @param y       row, 0..height-1
     * @param channel 0 = R, 1 = G, 2 = B
     */
    public int get(int x, int y, int channel) {
        return rgb[(y * width + x) * 3 + channel] & 0xff;
    }

    /**
     * Converts a decoder output [3,H,W] (float32, CHW, values nominally in [-1,1]) as diffusers'
     * {@code VaeImageProcessor.postprocess} does: {@code (x*0.5+0.5).clamp(0,1)}, then {@code round(x*255)} with round
     * half to even (numpy), in float32.
     *
     * @param chw    decoder output values
     * @param offset offset of this image in {@code chw}
     * @param height image height
     * @param width  image width
     * @return the image
     */
    public static RgbImage fromDecoderOutput(float[] chw, int offset, int height, int width) {
        int plane = height * width;
        byte[] out = new byte[plane * 3];
        for (int c = 0; c < 3; c++) {
            int base = offset + c * plane;
            for (int i = 0; i < plane; i++) {
                float v = chw[base + i] * 0.5f + 0.5f;
                v = v < 0f ? 0f : (v > 1f ? 1f : v);  // NaN stays NaN and becomes 0 below, as numpy's cast gives 0
                float s = v * 255f;
                int u = (int) Math.rint(s);
                out[i * 3 + c] = (byte) u;
            }
        }
        return wrap(width, height, out);
    }

    /** {@return a new {@link BufferedImage} of type {@code TYPE_3BYTE_BGR} holding these pixels} */
    public BufferedImage toBufferedImage() {
        BufferedImage img = new BufferedImage(width, height, BufferedImage.TYPE_3BYTE_BGR);
        byte[] dst = ((DataBufferByte) img.getRaster().getDataBuffer()).getData();
        for (int i = 0; i < width * height; i++) {
            dst[i * 3] = rgb[i * 3 + 2];
            dst[i * 3 + 1] = rgb[i * 3 + 1];
            dst[i * 3 + 2] = rgb[i * 3];
        }
        return img;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof RgbImage i && i.width == width && i.height == height && Arrays.equals(i.rgb, rgb);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * width + height) + Arrays.hashCode(rgb);
    }

    @Override
    public String toString() {
        return "RgbImage[" + width + "x" + height + "]";
    }
}
