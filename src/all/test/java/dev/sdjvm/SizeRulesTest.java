package dev.sdjvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdjvm.errors.InvalidRequestException;
import org.junit.jupiter.api.Test;

/**
 * Sizes that are multiples of 8 but not of the VAE scale x the UNet's downsampling (16 px for the embedded model,
 * block_out_channels (64, 128)) are refused before any work, naming the rule; they used to fail inside the traced UNet.
 */
class SizeRulesTest {
    @Test
    void sizesTheTracedUnetCannotTakeAreNamedBeforeAnyWork() {
        try (StableDiffusion sd = StableDiffusion.loadDefault()) {
            for (int[] hw : new int[][] {{8, 8}, {24, 24}, {40, 40}, {120, 120}, {64, 8}}) {
                GenerationRequest r = GenerationRequest.builder("a red circle").steps(2).seed(1L).height(hw[0])
                        .width(hw[1]).build();
                InvalidRequestException e = assertThrows(InvalidRequestException.class, () -> sd.generate(r),
                        hw[0] + "x" + hw[1]);
                assertTrue(e.getMessage().contains("multiple of 16"), e.getMessage());
                assertEquals(hw[0] % 16 != 0 ? "height" : "width", e.field());
            }
            GenerationResult ok = sd.generate(GenerationRequest.builder("a red circle").steps(2).seed(1L).height(32)
                    .width(48).build());
            assertEquals(32 * 48 * 3, ok.images().get(0).rgb().length);
        }
    }
}
