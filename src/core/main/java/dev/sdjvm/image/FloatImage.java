package dev.sdjvm.image;

import java.nio.FloatBuffer;
import java.util.Arrays;

/**
 * A float32 image in planar CHW layout, batch 1: what diffusers' {@code VaeImageProcessor.preprocess} returns for one
 * PIL image (a {@code [1, channels, height, width]} tensor). Immutable: the constructor copies the values it is given
 * and {@link #chw()} returns a copy ({@link #chwBuffer()} is a read-only view). Two images are equal when their
 * sizes and values are ({@link Arrays#equals(float[], float[])}).
 */
public final class FloatImage {
    private final int channels;
    private final int height;
    private final int width;
    private final float[] chw;

    /**
     * Checks the size and copies the values.
     *
     * @param channels number of planes (3 for an image, 1 for a mask), &gt;= 1
     * @param height   height in pixels, &gt;= 1
     * @param width    width in pixels, &gt;= 1
     * @param chw      exactly {@code channels*height*width} values, plane after plane, each plane row-major (copied)
     * @throws IllegalArgumentException if the sizes do not match
     */
    public FloatImage(int channels, int height, int width, float[] chw) {
        this(channels, height, width, check(channels, height, width, chw).clone(), null);
    }

    private FloatImage(int channels, int height, int width, float[] owned, Void unused) {
        this.channels = channels;
        this.height = height;
        this.width = width;
        this.chw = owned;
    }

    private static float[] check(int channels, int height, int width, float[] chw) {
        if (channels < 1 || height < 1 || width < 1 || chw == null
                || (long) channels * height * width != chw.length) {
            throw new IllegalArgumentException("need " + channels + "x" + height + "x" + width + " values, got "
                    + (chw == null ? "null" : chw.length));
        }
        return chw;
    }

    /** An image that takes ownership of {@code chw} (no copy): for this package's own new arrays only. */
    static FloatImage wrap(int channels, int height, int width, float[] chw) {
        return new FloatImage(channels, height, width, check(channels, height, width, chw), null);
    }

    /** {@return the number of planes (3 for an image, 1 for a mask)} */
    public int channels() {
        return channels;
    }

    /** {@return the height in pixels} */
    public int height() {
        return height;
    }

    /** {@return the width in pixels} */
    public int width() {
        return width;
    }

    /** {@return a copy of the {@code channels*height*width} values, plane after plane, each plane row-major} */
    public float[] chw() {
        return chw.clone();
    }

    /** {@return the values as a read-only buffer (no copy), plane after plane, each plane row-major} */
    public FloatBuffer chwBuffer() {
        return FloatBuffer.wrap(chw).asReadOnlyBuffer();
    }

    /**
     * {@return the value at (channel, y, x)}
     *
     * @param channel plane, 0..channels-1
     * @param y       row, 0..height-1
     * @param x       column, 0..width-1
     */
    public float get(int channel, int y, int x) {
        return chw[(channel * height + y) * width + x];
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof FloatImage i && i.channels == channels && i.height == height && i.width == width
                && Arrays.equals(i.chw, chw);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * (31 * channels + height) + width) + Arrays.hashCode(chw);
    }

    @Override
    public String toString() {
        return "FloatImage[" + channels + "x" + height + "x" + width + "]";
    }
}
