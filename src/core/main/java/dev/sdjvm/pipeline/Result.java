package dev.sdjvm.pipeline;

import dev.sdjvm.image.RgbImage;
import java.util.List;

/**
 * What a task pipeline produced (the facade's {@code GenerationResult}).
 *
 * @param images          the images
 * @param seed            the seed of the initial noise (the request's, or the random one drawn)
 * @param latents         the final latents [n,4,h,w] flat, before the VAE scaling
 * @param tokenizeNanos   tokenizing prompt and negative prompt
 * @param encodeNanos     text encoder calls
 * @param denoiseNanos    the denoising loop
 * @param unetNanos       inside UNet calls during the loop
 * @param decodeNanos     VAE post_quant_conv + decoder + conversion to RGB
 * @param totalNanos      the whole call
 * @param steps           denoising steps run
 * @param promptTruncated true when the prompt was cut to the text encoder's length
 * @param scheduler       the scheduler that ran (its diffusers class name)
 */
public record Result(List<RgbImage> images, long seed, float[] latents, long tokenizeNanos, long encodeNanos,
                     long denoiseNanos, long unetNanos, long decodeNanos, long totalNanos, int steps,
                     boolean promptTruncated, String scheduler) {
}
