package dev.sdjvm.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** No --negative-prompt (diffusers' None) and --negative-prompt "" stay apart; --guidance-rescale is read. */
class NegativePromptOptionTest {
    @Test
    void absentAndEmptyStayApart() {
        GenerateCommand absent = new GenerateCommand();
        new CommandLine(absent).parseArgs("a cat");
        assertNull(absent.negativePrompt);
        assertEquals(0.0, absent.guidanceRescale, "--guidance-rescale defaults to 0 (off)");
        GenerateCommand empty = new GenerateCommand();
        new CommandLine(empty).parseArgs("a cat", "--negative-prompt", "", "--guidance-rescale", "0.5");
        assertEquals("", empty.negativePrompt);
        assertEquals(0.5, empty.guidanceRescale);
    }
}
