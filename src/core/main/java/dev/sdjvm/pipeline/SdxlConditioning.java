package dev.sdjvm.pipeline;

import dev.sdjvm.model.SdxlConfig;
import dev.sdjvm.model.UNetSignature;
import java.util.List;

/**
 * The SDXL UNet's conditioning, as diffusers' {@code StableDiffusionXLPipeline} prepares it (step 7, "added time ids
 * and embeddings"): {@code encoder_hidden_states} (both encoders' penultimate hidden states side by side),
 * {@code text_embeds} (the second encoder's pooled, projected embedding) and {@code time_ids}: {@code original_size +
 * crops_coords_top_left + target_size} = {@code [H, W, 0, 0, H, W]} for the image being made, the same for both halves
 * of classifier-free guidance.
 */
final class SdxlConditioning {
    /** The UNet inputs the SDXL family writes once per generation, besides sample and timestep, in AWS's argument order. */
    static final List<String> UNET_CONDITIONING = UNetSignature.SDXL.conditioning();

    private SdxlConditioning() {
    }

    /**
     * diffusers' {@code _get_add_time_ids(original_size=(h, w), crops_coords_top_left=(0, 0), target_size=(h, w))}.
     *
     * @param height the image height
     * @param width  the image width
     * @return {@code [height, width, 0, 0, height, width]}
     */
    static float[] timeIds(int height, int width) {
        return new float[] {height, width, 0, 0, height, width};
    }

    /**
     * The UNet conditioning for every UNet row.
     *
     * @param text   the encoded prompts, one row per UNet row
     * @param rows   UNet rows
     * @param height the image height
     * @param width  the image width
     * @return encoder_hidden_states [rows,77,H1+H2], text_embeds [rows,P], time_ids [rows,6]
     */
    static List<UNetRunner.Conditioning> of(SdxlTextEncoding.Embeddings text, int rows, int height, int width) {
        float[] one = timeIds(height, width);
        float[] ids = new float[rows * one.length];
        for (int r = 0; r < rows; r++) {
            System.arraycopy(one, 0, ids, r * one.length, one.length);
        }
        return List.of(
                new UNetRunner.Conditioning(UNET_CONDITIONING.get(0), text.promptEmbeds(),
                        new long[] {text.tokens(), text.hidden()}),
                new UNetRunner.Conditioning(UNET_CONDITIONING.get(1), text.pooled(), new long[] {text.pooledDim()}),
                new UNetRunner.Conditioning(UNET_CONDITIONING.get(2), ids, new long[] {SdxlConfig.TIME_IDS}));
    }
}
