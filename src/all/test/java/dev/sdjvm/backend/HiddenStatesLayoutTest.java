package dev.sdjvm.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdjvm.errors.BackendException;
import dev.sdjvm.model.ArtifactRole;
import dev.sdjvm.model.DType;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** AWS's SDXL text encoder outputs are read by their structure: which output is which follows from ranks and shapes. */
class HiddenStatesLayoutTest {
    private static List<TensorSpec> outs(long[]... shapes) {
        List<TensorSpec> l = new ArrayList<>();
        for (int i = 0; i < shapes.length; i++) {
            l.add(new TensorSpec("output" + i, DType.FLOAT32, shapes[i]));
        }
        return l;
    }

    private static long[] s(long... d) {
        return d;
    }

    @Test
    void clipTextModel() {
        // (last_hidden_state, pooler_output, 13 hidden states): CLIP ViT-L, 12 layers
        long[][] shapes = new long[15][];
        shapes[0] = s(1, 77, 768);
        shapes[1] = s(1, 768);
        for (int i = 2; i < 15; i++) {
            shapes[i] = s(1, 77, 768);
        }
        HiddenStatesLayout l = HiddenStatesLayout.of(ArtifactRole.TEXT_ENCODER, outs(shapes), 77);
        assertFalse(l.projection());
        assertEquals(0, l.lastHiddenState());
        assertEquals(1, l.pooled());
        assertEquals(13, l.penultimate(), "hidden_states[-2] = hidden state 11 = output 13");
        assertEquals(13, l.hiddenStates());
        assertEquals(768, l.hiddenSize());
    }

    @Test
    void clipTextModelWithProjection() {
        // (text_embeds, last_hidden_state, 33 hidden states): OpenCLIP bigG, 32 layers
        long[][] shapes = new long[35][];
        shapes[0] = s(1, 1280);
        shapes[1] = s(1, 77, 1280);
        for (int i = 2; i < 35; i++) {
            shapes[i] = s(1, 77, 1280);
        }
        HiddenStatesLayout l = HiddenStatesLayout.of(ArtifactRole.TEXT_ENCODER_2, outs(shapes), 77);
        assertTrue(l.projection());
        assertEquals(0, l.pooled());
        assertEquals(1, l.lastHiddenState());
        assertEquals(33, l.penultimate());
        assertEquals(1280, l.pooledSize());
        // a projection narrower than the hidden size
        HiddenStatesLayout narrow = HiddenStatesLayout.of(ArtifactRole.TEXT_ENCODER_2,
                outs(s(1, 6), s(1, 77, 12), s(1, 77, 12), s(1, 77, 12)), 77);
        assertEquals(6, narrow.pooledSize());
        assertEquals(12, narrow.hiddenSize());
        assertEquals(2, narrow.penultimate());
    }

    @Test
    void refusesWhatIsNotThatStructure() {
        ArtifactRole te = ArtifactRole.TEXT_ENCODER;
        // SD 2.x's (last_hidden_state, pooler_output): no hidden states
        BackendException e = assertThrows(BackendException.class,
                () -> HiddenStatesLayout.of(te, outs(s(1, 77, 16), s(1, 16)), 77));
        assertTrue(e.getMessage().contains("output_hidden_states=True"), e.getMessage());
        // two 3-D tensors first: neither order of transformers' tuple
        e = assertThrows(BackendException.class,
                () -> HiddenStatesLayout.of(te, outs(s(1, 77, 16), s(1, 77, 16), s(1, 77, 16), s(1, 77, 16)), 77));
        assertTrue(e.getMessage().contains("first two outputs"), e.getMessage());
        // a hidden state of another width
        e = assertThrows(BackendException.class,
                () -> HiddenStatesLayout.of(te, outs(s(1, 77, 16), s(1, 16), s(1, 77, 16), s(1, 77, 8)), 77));
        assertTrue(e.getMessage().contains("hidden state 1 (output 3)"), e.getMessage());
        // a pooler_output of another width than last_hidden_state (without projection it must be H)
        e = assertThrows(BackendException.class,
                () -> HiddenStatesLayout.of(te, outs(s(1, 77, 16), s(1, 8), s(1, 77, 16), s(1, 77, 16)), 77));
        assertTrue(e.getMessage().contains("pooler_output"), e.getMessage());
        // another token count
        e = assertThrows(BackendException.class,
                () -> HiddenStatesLayout.of(te, outs(s(1, 64, 16), s(1, 16), s(1, 64, 16), s(1, 64, 16)), 77));
        assertTrue(e.getMessage().contains("[1,77,H]"), e.getMessage());
        // outputs not in argument order (named by position but listed otherwise)
        List<TensorSpec> swapped = new ArrayList<>(outs(s(1, 77, 16), s(1, 16), s(1, 77, 16), s(1, 77, 16)));
        swapped.add(0, swapped.remove(1));
        e = assertThrows(BackendException.class, () -> HiddenStatesLayout.of(te, swapped, 77));
        assertTrue(e.getMessage().contains("not in argument order"), e.getMessage());
    }
}
