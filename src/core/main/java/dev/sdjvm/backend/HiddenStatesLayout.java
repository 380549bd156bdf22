package dev.sdjvm.backend;

import dev.sdjvm.errors.BackendException;
import dev.sdjvm.model.ArtifactRole;
import java.util.List;

/**
 * Where the outputs of a text encoder traced as AWS's SDXL sample does ({@code TraceableTextEncoder}: transformers'
 * {@code text_encoder(ids, output_hidden_states=True, return_dict=False)}) are, read from the structure of its
 * flattened output tuple (a TorchScript tuple's elements, nested ones flattened; a NEFF's {@code output0, output1, ...}
 * in the same order), never from a guessed position:
 * <ul>
 *   <li>{@code CLIPTextModel}: {@code (last_hidden_state [1,S,H], pooler_output [1,H], *hidden_states)};</li>
 *   <li>{@code CLIPTextModelWithProjection}: {@code (text_embeds [1,P], last_hidden_state [1,S,H], *hidden_states)};</li>
 * </ul>
 * the hidden states being the embeddings' and every layer's output, {@code [1,S,H]} each (at least two). The first two
 * outputs' ranks tell the two apart; every shape is checked.
 *
 * @param pooled          the index of the 2-D output: {@code text_embeds} (with projection) or {@code pooler_output}
 * @param lastHiddenState the index of {@code last_hidden_state}
 * @param penultimate     the index of {@code hidden_states[-2]}, what SDXL conditions on
 * @param hiddenStates    the number of hidden states (layers + 1)
 * @param hiddenSize      H
 * @param pooledSize      P (the projection's width, or H)
 * @param projection      true for {@code CLIPTextModelWithProjection}'s order
 */
public record HiddenStatesLayout(int pooled, int lastHiddenState, int penultimate, int hiddenStates, int hiddenSize,
                                 int pooledSize, boolean projection) {

    /**
     * Reads the layout of a text encoder's outputs.
     *
     * @param role    the text encoder's role (for messages)
     * @param outputs its outputs, flattened, with shapes
     * @param tokens  the token count S of its input
     * @return the layout
     * @throws BackendException naming what does not fit
     */
    public static HiddenStatesLayout of(ArtifactRole role, List<TensorSpec> outputs, long tokens) {
        int n = outputs.size();
        if (n < 4) {
            throw misfit(role, outputs, "expected at least 4 outputs (last_hidden_state or text_embeds, pooled, and the "
                    + "hidden states of the embeddings and every layer: output_hidden_states=True)");
        }
        for (int i = 0; i < n; i++) {
            String name = outputs.get(i).name();
            if (name != null && name.matches("output\\d+") && !name.equals("output" + i)) {
                throw misfit(role, outputs, "output " + i + " is named " + name + ": the outputs are not in argument order");
            }
        }
        TensorSpec a = outputs.get(0);
        TensorSpec b = outputs.get(1);
        boolean projection;
        if (a.rank() == 2 && b.rank() == 3) {
            projection = true;
        } else if (a.rank() == 3 && b.rank() == 2) {
            projection = false;
        } else {
            throw misfit(role, outputs, "the first two outputs must be (last_hidden_state [1,S,H], pooler_output [1,H]) "
                    + "or (text_embeds [1,P], last_hidden_state [1,S,H])");
        }
        TensorSpec last = projection ? b : a;
        TensorSpec pooled = projection ? a : b;
        if (last.dim(0) != 1 || last.dim(1) != tokens || last.dim(2) < 1) {
            throw misfit(role, outputs, "last_hidden_state " + last + " is not [1," + tokens + ",H]");
        }
        long h = last.dim(2);
        if (pooled.dim(0) != 1 || pooled.dim(1) < 1 || !projection && pooled.dim(1) != h) {
            throw misfit(role, outputs, (projection ? "text_embeds " : "pooler_output ") + pooled + " is not [1,"
                    + (projection ? "P" : String.valueOf(h)) + "]");
        }
        for (int i = 2; i < n; i++) {
            TensorSpec s = outputs.get(i);
            if (s.rank() != 3 || s.dim(0) != 1 || s.dim(1) != tokens || s.dim(2) != h) {
                throw misfit(role, outputs, "hidden state " + (i - 2) + " (output " + i + ") " + s + " is not [1,"
                        + tokens + "," + h + "]");
            }
        }
        return new HiddenStatesLayout(projection ? 0 : 1, projection ? 1 : 0, n - 2, n - 2, Math.toIntExact(h),
                Math.toIntExact(pooled.dim(1)), projection);
    }

    private static BackendException misfit(ArtifactRole role, List<TensorSpec> outputs, String what) {
        return new BackendException(role + " returned " + outputs + ": " + what + ", as AWS's SDXL wrapper traces "
                + "transformers' text encoder with output_hidden_states=True, return_dict=False");
    }
}
