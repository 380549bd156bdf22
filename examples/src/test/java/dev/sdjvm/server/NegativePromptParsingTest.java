package dev.sdjvm.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.sdjvm.GenerationRequest;
import dev.sdjvm.errors.InvalidRequestException;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/**
 * diffusers treats no negative prompt (None) and an empty one ("") differently (SDXL's force_zeros_for_empty_prompt
 * zeros the first, encodes the second): the server keeps them apart (the CLI: NegativePromptOptionTest);
 * guidance_rescale reaches the request.
 */
class NegativePromptParsingTest {
    private static GenerationRequest parse(String json) {
        return InvocationParser.json(json.getBytes(StandardCharsets.UTF_8)).build();
    }

    @Test
    void serverKeepsAbsentAndEmptyApart() {
        assertNull(parse("{\"prompt\": \"a cat\"}").negativePrompt());
        assertNull(parse("{\"prompt\": \"a cat\", \"parameters\": {\"negative_prompt\": null}}").negativePrompt());
        assertEquals("", parse("{\"prompt\": \"a cat\", \"parameters\": {\"negative_prompt\": \"\"}}").negativePrompt());
        GenerationRequest r = parse("{\"prompt\": \"a cat\", \"parameters\": {\"guidance_rescale\": 0.7}}");
        assertEquals(0.7, r.guidanceRescale());
        InvalidRequestException e = assertThrows(InvalidRequestException.class,
                () -> parse("{\"prompt\": \"a cat\", \"parameters\": {\"guidance_rescale\": 2}}"));
        assertEquals("guidance_rescale", e.field());
    }
}
