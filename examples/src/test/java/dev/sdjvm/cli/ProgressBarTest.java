package dev.sdjvm.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.Test;

/** The progress output: a redrawn bar for terminals, sparse plain lines otherwise, nothing when off. */
class ProgressBarTest {
    static String drive(ProgressBar.Style style, int total, long nanosPerStep) {
        StringWriter s = new StringWriter();
        ProgressBar bar = new ProgressBar(new PrintWriter(s), style, "");
        for (int k = 1; k <= total; k++) {
            assertTrue(bar.onStep(k, total, 1000 - k, k * nanosPerStep), "never cancels");
        }
        return s.toString();
    }

    @Test
    void barIsRedrawnInPlaceAndEndsWithANewline() {
        String out = drive(ProgressBar.Style.BAR, 4, 500_000_000L);  // 0.5 s per step = 2 it/s
        assertEquals(4, out.split("\r", -1).length - 1, "one redraw per step");
        assertTrue(out.contains("\r[###############...............] 2/4 2.00 it/s ETA 0:01"), out);
        assertTrue(out.contains("[##############################] 4/4 2.00 it/s ETA 0:00"), out);
        assertTrue(out.endsWith("\n") || out.endsWith(System.lineSeparator()), out);
    }

    @Test
    void slowStepsShowSecondsPerIteration() {
        assertTrue(drive(ProgressBar.Style.BAR, 2, 4_000_000_000L).contains("4.00 s/it"));
    }

    @Test
    void plainLinesAreSparse() {
        // the loop runs faster than one line a second: only the first and the last step are printed
        String out = drive(ProgressBar.Style.PLAIN, 50, 1_000_000L);
        String[] lines = out.trim().split("\\R");
        assertEquals(2, lines.length, out);
        assertTrue(lines[0].startsWith("step 1/50 "), out);
        assertTrue(lines[1].startsWith("step 50/50 "), out);
        // 0.4 s per step: a line when a second has passed since the last one (steps 1, 4, 7) and the last step
        String slow = drive(ProgressBar.Style.PLAIN, 10, 400_000_000L);
        assertEquals(4, slow.trim().split("\\R").length, slow);
        assertTrue(slow.contains("step 7/10 "), slow);
        assertEquals("", drive(ProgressBar.Style.OFF, 10, 1_000_000L));
    }
}
