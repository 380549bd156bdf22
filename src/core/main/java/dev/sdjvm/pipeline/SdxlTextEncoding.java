package dev.sdjvm.pipeline;

import dev.sdjvm.backend.HiddenStatesLayout;
import dev.sdjvm.backend.Invocation;
import dev.sdjvm.errors.BackendException;
import dev.sdjvm.model.ArtifactRole;
import dev.sdjvm.tokenizer.ClipTokenizer;
import dev.sdjvm.tokenizer.Encoding;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * diffusers' {@code StableDiffusionXLPipeline.encode_prompt} (no {@code prompt_2}, no clip skip): the prompt through
 * both tokenizers and text encoders; the prompt embedding is {@code hidden_states[-2]} of encoder 1 and of encoder 2
 * concatenated along the features ({@code torch.concat(..., dim=-1)}), the pooled embedding encoder 2's
 * {@code text_embeds}. Under classifier-free guidance the negative side is, as diffusers decides it:
 * <ul>
 *   <li>zeros (embedding and pooled) when there is no negative prompt (null) and the model's
 *       {@code force_zeros_for_empty_prompt} is true;</li>
 *   <li>otherwise the negative prompt encoded the same way ({@code ""} when null): an explicit {@code ""} is
 *       encoded, not zeroed.</li>
 * </ul>
 * The encoders' outputs are read by structure ({@link HiddenStatesLayout}).
 */
final class SdxlTextEncoding {
    private static final Logger LOG = LoggerFactory.getLogger(SdxlTextEncoding.class);

    /**
     * The encoded prompts, one row per UNet row: {@code [uncond] * n + [cond] * n} under CFG, else {@code [cond] * n}.
     *
     * @param promptEmbeds [rows, tokens, hidden] flat
     * @param pooled       [rows, pooledDim] flat
     * @param tokens       the token count (77)
     * @param hidden       H1 + H2
     * @param pooledDim    P
     * @param truncated    true when the prompt was cut to the encoders' length
     * @param zeroNegative true when the negative side is zeros ({@code force_zeros_for_empty_prompt})
     */
    record Embeddings(float[] promptEmbeds, float[] pooled, int tokens, int hidden, int pooledDim, boolean truncated,
                      boolean zeroNegative) {
    }

    /** One prompt through both encoders: [tokens, H1+H2] and [P]. */
    private record Pair(float[] embeds, float[] pooled, int hidden) {
    }

    private final PipelineComponents components;

    SdxlTextEncoding(PipelineComponents components) {
        this.components = components;
    }

    /**
     * Encodes a request's prompt and, under guidance, its negative side.
     *
     * @param prompt         the prompt
     * @param negativePrompt the negative prompt, or null (see the class comment: null and "" differ)
     * @param images         images per prompt
     * @param cfg            classifier-free guidance runs
     * @return the embeddings, one row per UNet row
     */
    Embeddings encode(String prompt, String negativePrompt, int images, boolean cfg) {
        Pair cond = encode(prompt, "prompt");
        Pair uncond = null;
        boolean zeros = cfg && negativePrompt == null && components.sdxl().forceZerosForEmptyPrompt();
        if (cfg) {
            uncond = zeros ? new Pair(new float[cond.embeds().length], new float[cond.pooled().length], cond.hidden())
                    : encode(negativePrompt == null ? "" : negativePrompt, "negative prompt");
        }
        int rows = cfg ? 2 * images : images;
        int e = cond.embeds().length;
        int p = cond.pooled().length;
        float[] embeds = new float[rows * e];
        float[] pooled = new float[rows * p];
        for (int r = 0; r < rows; r++) {
            Pair src = cfg && r < images ? uncond : cond;
            System.arraycopy(src.embeds(), 0, embeds, r * e, e);
            System.arraycopy(src.pooled(), 0, pooled, r * p, p);
        }
        int tokens = components.tokenizer().maxLength();
        boolean truncated = components.tokenizer().tokenize(prompt).truncated();
        return new Embeddings(embeds, pooled, tokens, cond.hidden(), p, truncated, zeros);
    }

    /** One text through both tokenizers and encoders. */
    private Pair encode(String text, String what) {
        Encoding ids1 = tokenize(components.tokenizer(), text, what);
        Encoding ids2 = tokenize(components.tokenizer2(), text, what);
        Out one = run(ArtifactRole.TEXT_ENCODER, ids1.inputIds(), false);
        Out two = run(ArtifactRole.TEXT_ENCODER_2, ids2.inputIds(), true);
        int tokens = ids1.inputIds().length;
        if (ids2.inputIds().length != tokens) {
            throw new BackendException("tokenizer/ pads to " + tokens + " tokens, tokenizer_2/ to " + ids2.inputIds().length);
        }
        int h1 = one.layout().hiddenSize();
        int h2 = two.layout().hiddenSize();
        float[] embeds = new float[tokens * (h1 + h2)];
        for (int s = 0; s < tokens; s++) {  // torch.concat([hidden_1, hidden_2], dim=-1)
            System.arraycopy(one.penultimate(), s * h1, embeds, s * (h1 + h2), h1);
            System.arraycopy(two.penultimate(), s * h2, embeds, s * (h1 + h2) + h1, h2);
        }
        return new Pair(embeds, two.pooled(), h1 + h2);
    }

    private static Encoding tokenize(ClipTokenizer tokenizer, String text, String what) {
        Encoding e = tokenizer.tokenize(text);
        if (e.truncated()) {
            LOG.warn("The {} has {} tokens; the text encoders take {}: the part after token {} was truncated", what,
                    e.tokenCount(), tokenizer.maxLength() - 2, tokenizer.maxLength() - 2);
        }
        return e;
    }

    private record Out(HiddenStatesLayout layout, float[] penultimate, float[] pooled) {
    }

    /** Runs one text encoder on [1,S] ids: its penultimate hidden state, and (if asked) its pooled output. */
    private Out run(ArtifactRole role, int[] ids, boolean withPooled) {
        InvocationPool pool = components.pool(role);
        Invocation inv = pool.acquire(new long[] {1, ids.length});
        try {
            inv.write(0, 0, ids, 0, ids.length);
            inv.run();
            HiddenStatesLayout layout = HiddenStatesLayout.of(role, inv.outputs(), ids.length);
            if (role == ArtifactRole.TEXT_ENCODER_2 && !layout.projection()) {
                throw new BackendException("text_encoder_2 returned (last_hidden_state, pooler_output, ...): SDXL's "
                        + "second encoder is CLIPTextModelWithProjection, whose first output is text_embeds");
            }
            float[] penultimate = new float[ids.length * layout.hiddenSize()];
            inv.read(layout.penultimate(), penultimate, 0);  // prompt_embeds.hidden_states[-2], as float32
            float[] pooled = null;
            if (withPooled) {
                pooled = new float[layout.pooledSize()];
                inv.read(layout.pooled(), pooled, 0);  // text_embeds
            }
            return new Out(layout, penultimate, pooled);
        } finally {
            pool.release(inv);
        }
    }
}
