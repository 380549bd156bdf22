package dev.sdjvm.image;

import java.awt.image.BufferedImage;
import java.awt.image.DataBufferByte;

/**
 * An 8-bit RGB image, row-major HWC bytes (what diffusers' {@code numpy_to_pil} receives).
 *
 * @param width  width in pixels
 * @param height height in pixels
 * @param rgb    {@code height*width*3} bytes, R G B per pixel (held, not copied: treat them as read-only)
 */
public record RgbImage(int width, int height, byte[] rgb) {
    /**
     * Checks the size.
     *
     * @param width  width in pixels, &gt;= 1
     * @param height height in pixels, &gt;= 1
     * @param rgb    exactly {@code height*width*3} bytes
     * @throws IllegalArgumentException if the sizes do not match
     */
    public RgbImage {
        if (width < 1 || height < 1 || rgb == null || rgb.length != width * height * 3) {
            throw new IllegalArgumentException("need " + width + "x" + height + "x3 bytes, got "
                    + (rgb == null ? "null" : rgb.length));
        }
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
        return new RgbImage(width, height, out);
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
}
