package dev.sdjvm.image;

/**
 * A float32 image in planar CHW layout, batch 1: what diffusers' {@code VaeImageProcessor.preprocess} returns for one
 * PIL image (a {@code [1, channels, height, width]} tensor).
 *
 * @param channels number of planes (3 for an image, 1 for a mask)
 * @param height   height in pixels
 * @param width    width in pixels
 * @param chw      {@code channels*height*width} values, plane after plane, each plane row-major (held, not copied)
 */
public record FloatImage(int channels, int height, int width, float[] chw) {
    /**
     * Checks the size.
     *
     * @param channels number of planes, &gt;= 1
     * @param height   height in pixels, &gt;= 1
     * @param width    width in pixels, &gt;= 1
     * @param chw      exactly {@code channels*height*width} values
     * @throws IllegalArgumentException if the sizes do not match
     */
    public FloatImage {
        if (channels < 1 || height < 1 || width < 1 || chw == null
                || (long) channels * height * width != chw.length) {
            throw new IllegalArgumentException("need " + channels + "x" + height + "x" + width + " values, got "
                    + (chw == null ? "null" : chw.length));
        }
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
}
