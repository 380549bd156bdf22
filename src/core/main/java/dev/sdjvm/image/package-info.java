/**
 * Images, with the numbers of Pillow and diffusers: 8-bit RGB ({@link dev.sdjvm.image.RgbImage}) and grey
 * ({@link dev.sdjvm.image.GrayImage}) images; PNG/JPEG bytes decoded as Pillow's {@code convert("RGB")}
 * ({@link dev.sdjvm.image.ImageInputs}); Pillow's LANCZOS resize, bit for bit ({@link dev.sdjvm.image.Lanczos});
 * diffusers' {@code VaeImageProcessor.preprocess} for image-to-image and inpainting inputs and masks
 * ({@link dev.sdjvm.image.VaeImageProcessor}, giving a {@link dev.sdjvm.image.FloatImage}); and the decoder output's
 * post-processing ({@link dev.sdjvm.image.RgbImage#fromDecoderOutput}).
 */
package dev.sdjvm.image;
