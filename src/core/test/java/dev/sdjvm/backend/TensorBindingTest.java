package dev.sdjvm.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdjvm.errors.BackendException;
import dev.sdjvm.model.ArtifactRole;
import dev.sdjvm.model.DType;
import dev.sdjvm.model.UNetSignature;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Inputs and outputs are found by their role's names (or their position's), never by rank or size. */
class TensorBindingTest {
    private static TensorSpec t(String name, long... shape) {
        return new TensorSpec(name, DType.FLOAT32, shape);
    }

    @Test
    void outputsByNameThenByPositionThenTheLoneOne() {
        ArtifactRole te = ArtifactRole.TEXT_ENCODER;
        // a dict in any key order: by key
        assertEquals(1, TensorBinding.output(te, List.of(t("pooler_output", 1, 16), t("last_hidden_state", 1, 77, 16)),
                "last_hidden_state"));
        // a tuple / a NEFF: output<k> is the contract's k-th output, whatever its shape
        assertEquals(0, TensorBinding.output(te, List.of(t("output0", 1, 77, 16), t("output1", 1, 16)), "last_hidden_state"));
        assertEquals(1, TensorBinding.output(te, List.of(t("output0", 1, 77, 16), t("output1", 1, 16)), "pooler_output"));
        // the same rank and size twice: position decides, not a guess
        assertEquals(1, TensorBinding.output(te, List.of(t("output1", 1, 77, 16), t("output0", 1, 77, 16)),
                "last_hidden_state"));
        // a bare tensor or a 1-tuple, and a one-key dict under another key
        ArtifactRole enc = ArtifactRole.VAE_ENCODER;
        assertEquals(0, TensorBinding.output(enc, List.of(t("latent_parameters", 1, 8, 8, 8)), "latent_parameters"));
        assertEquals(0, TensorBinding.output(enc, List.of(t("output0", 1, 8, 8, 8)), "latent_parameters"));
        assertEquals(0, TensorBinding.output(ArtifactRole.UNET, List.of(t("sample", 1, 4, 8, 8)), "noise_pred"));
        // two unknown names: no guess
        BackendException e = assertThrows(BackendException.class, () -> TensorBinding.output(enc,
                List.of(t("mean", 1, 4, 8, 8), t("logvar", 1, 4, 8, 8)), "latent_parameters"));
        assertTrue(e.getMessage().contains("none is its latent_parameters (by name, or output0 by position)"),
                e.getMessage());
        // only the contract's second output: the lone-output rule is for the first
        assertThrows(BackendException.class, () -> TensorBinding.output(te, List.of(t("x", 1, 16)), "pooler_output"));
        assertThrows(IllegalArgumentException.class, () -> TensorBinding.output(te, List.of(), "image"));
    }

    @Test
    void inputsByNameOrPosition() {
        Artifact named = artifact(List.of(t("encoder_hidden_states", 1, 77, 16), t("sample", 1, 4, 8, 8), t("timestep", 1)));
        assertEquals(1, TensorBinding.input(named, "sample"));
        assertEquals(2, TensorBinding.input(named, "timestep"));
        assertEquals(0, TensorBinding.input(named, "encoder_hidden_states"));
        Artifact neff = artifact(List.of(t("input0", 1, 4, 8, 8), t("input1", 1), t("input2", 1, 77, 16)));
        assertEquals(0, TensorBinding.input(neff, "sample"));
        assertEquals(2, TensorBinding.input(neff, "encoder_hidden_states"));
        Artifact other = artifact(List.of(t("x", 1, 4, 8, 8)));
        BackendException e = assertThrows(BackendException.class, () -> TensorBinding.input(other, "timestep"));
        assertTrue(e.getMessage().contains("unet (unet.pt) takes") && e.getMessage().contains("input1 by position"),
                e.getMessage());
    }

    @Test
    void positionsFollowTheModelsUNetSignature() {
        // a NEFF of each UNet kind: the fourth argument is SDXL's text_embeds or LCM's timestep_cond
        List<TensorSpec> four = List.of(t("input0", 2, 4, 8, 8), t("input1", 2), t("input2", 2, 77, 16), t("input3", 2, 6),
                t("input4", 2, 6));
        Artifact sdxl = artifact(four, ArtifactRole.UNET.inputs(UNetSignature.SDXL));
        assertEquals(3, TensorBinding.input(sdxl, "text_embeds"));
        assertEquals(4, TensorBinding.input(sdxl, "time_ids"));
        assertThrows(IllegalArgumentException.class, () -> TensorBinding.input(sdxl, "timestep_cond"));
        Artifact lcm = artifact(four.subList(0, 4), ArtifactRole.UNET.inputs(UNetSignature.LCM));
        assertEquals(3, TensorBinding.input(lcm, "timestep_cond"));
        assertThrows(IllegalArgumentException.class, () -> TensorBinding.input(lcm, "text_embeds"));
        Artifact sd = artifact(four.subList(0, 3), ArtifactRole.UNET.inputs(UNetSignature.SD));
        assertThrows(IllegalArgumentException.class, () -> TensorBinding.input(sd, "timestep_cond"));
        // the missing position is named by the model's signature
        Artifact short4 = artifact(four.subList(0, 3), ArtifactRole.UNET.inputs(UNetSignature.LCM));
        BackendException e = assertThrows(BackendException.class, () -> TensorBinding.input(short4, "timestep_cond"));
        assertTrue(e.getMessage().contains("input3 by position"), e.getMessage());
        // every other role's contract is the same for every signature
        for (UNetSignature u : UNetSignature.values()) {
            assertEquals(ArtifactRole.VAE_DECODER.inputs(), ArtifactRole.VAE_DECODER.inputs(u));
            assertEquals(u.inputs().subList(2, u.inputs().size()), u.conditioning());
        }
    }

    private static Artifact artifact(List<TensorSpec> inputs) {
        return artifact(inputs, ArtifactRole.UNET.inputs());
    }

    private static Artifact artifact(List<TensorSpec> inputs, List<String> contract) {
        return new Artifact() {
            @Override
            public List<String> contract() {
                return contract;
            }

            @Override
            public ArtifactRole role() {
                return ArtifactRole.UNET;
            }

            @Override
            public Path file() {
                return Path.of("unet.pt");
            }

            @Override
            public String device() {
                return "cpu";
            }

            @Override
            public List<TensorSpec> inputs() {
                return inputs;
            }

            @Override
            public List<TensorSpec> outputs() {
                return List.of();
            }

            @Override
            public Invocation open(long[]... inputShapes) {
                throw new UnsupportedOperationException();
            }

            @Override
            public void close() {
            }
        };
    }
}
