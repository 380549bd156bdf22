package dev.sdjvm.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdjvm.GenerationRequest;
import dev.sdjvm.image.RgbImage;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;

/** PNG text chunks, JPEG, the A1111 parameters text and the small parsers of the CLI. */
class ImageFilesTest {
    static RgbImage gradient() {
        byte[] px = new byte[8 * 4 * 3];
        for (int i = 0; i < px.length; i++) {
            px[i] = (byte) (i * 7);
        }
        return new RgbImage(8, 4, px);
    }

    @Test
    void pngKeepsPixelsAndLatin1TextInTEXt() throws Exception {
        RgbImage img = gradient();
        String text = "a café\nNegative prompt: blurry\nSteps: 20, Sampler: DPM++ 2M, CFG scale: 7.5, Seed: 42";
        byte[] png = ImageFiles.encode(img.toBufferedImage(), ImageFiles.Format.PNG, Map.of("parameters", text));
        assertEquals(text, ImageFiles.readPngText(png).get("parameters"));
        // it is a tEXt chunk (Latin-1), the chunk A1111 readers look at
        String raw = new String(png, StandardCharsets.ISO_8859_1);
        assertTrue(raw.contains("tEXtparameters\0a café\nNegative"), "tEXt chunk with keyword 'parameters'");
        BufferedImage back = ImageIO.read(new ByteArrayInputStream(png));
        for (int y = 0; y < 4; y++) {
            for (int x = 0; x < 8; x++) {
                int e = img.get(x, y, 0) << 16 | img.get(x, y, 1) << 8 | img.get(x, y, 2);
                assertEquals(e, back.getRGB(x, y) & 0xffffff);
            }
        }
    }

    @Test
    void nonLatin1TextGoesToITXt() throws Exception {
        String text = "富士山 at dawn, \u2603";
        Map<String, String> m = new LinkedHashMap<>();
        m.put("parameters", text);
        m.put("Software", "sdjvm");
        byte[] png = ImageFiles.encode(gradient().toBufferedImage(), ImageFiles.Format.PNG, m);
        Map<String, String> back = ImageFiles.readPngText(png);
        assertEquals(text, back.get("parameters"));
        assertEquals("sdjvm", back.get("Software"));
        assertTrue(new String(png, StandardCharsets.ISO_8859_1).contains("iTXtparameters"));
    }

    @Test
    void jpeg() throws Exception {
        byte[] jpg = ImageFiles.encode(gradient().toBufferedImage(), ImageFiles.Format.JPEG, Map.of("parameters", "x"));
        assertEquals(0xFF, jpg[0] & 0xff);
        assertEquals(0xD8, jpg[1] & 0xff);
        assertEquals(8, ImageIO.read(new ByteArrayInputStream(jpg)).getWidth());
    }

    @Test
    void formats() {
        assertEquals(ImageFiles.Format.JPEG, ImageFiles.Format.ofFileName("x.JPG"));
        assertEquals(ImageFiles.Format.JPEG, ImageFiles.Format.parse("jpeg"));
        assertEquals(ImageFiles.Format.PNG, ImageFiles.Format.ofFileName("a.b.png"));
        assertNull(ImageFiles.Format.ofFileName("noext"));
        assertNull(ImageFiles.Format.parse("gif"));
    }

    @Test
    void overridesAreJsonTyped() {
        Map<String, String> raw = new LinkedHashMap<>();
        raw.put("use_karras_sigmas", "true");
        raw.put("steps_offset", "1");
        raw.put("beta_end", "0.012");
        raw.put("timestep_spacing", "trailing");
        raw.put("algorithm_type", "\"dpmsolver++\"");
        Map<String, Object> m = Overrides.parse(raw);
        assertEquals(Boolean.TRUE, m.get("use_karras_sigmas"));
        assertEquals(1, m.get("steps_offset"));
        assertEquals(0.012, m.get("beta_end"));
        assertEquals("trailing", m.get("timestep_spacing"));
        assertEquals("dpmsolver++", m.get("algorithm_type"));
    }

    @Test
    void durations() {
        assertEquals(Duration.ofSeconds(60), Durations.parse("60s"));
        assertEquals(Duration.ofMillis(500), Durations.parse("500ms"));
        assertEquals(Duration.ofMinutes(2), Durations.parse("2m"));
        assertEquals(Duration.ofMillis(1500), Durations.parse("1.5"));
        assertThrows(RuntimeException.class, () -> Durations.parse("soon"));
        assertThrows(RuntimeException.class, () -> Durations.parse("-1s"));
        assertEquals(Duration.ofDays(2), Durations.parse("2d"), "days, not Java's double suffix (2d = 2.0)");
        assertEquals(Duration.ofSeconds(100), Durations.parse("1e2"));
        for (String bad : new String[] {"2f", "1e11", "1e11s", "NaN", "Infinity", "0x10", "1e400", "0", "400d"}) {
            assertThrows(RuntimeException.class, () -> Durations.parse(bad), bad);
        }
    }

    @Test
    void outputNames() {
        assertEquals(List.of(Path.of("d/out.png")), GenerateCommand.outputFiles(Path.of("d/out.png"), 1));
        assertEquals(List.of(Path.of("d/out-1.png"), Path.of("d/out-2.png")),
                GenerateCommand.outputFiles(Path.of("d/out.png"), 2));
        assertEquals(List.of(Path.of("img-1"), Path.of("img-2")), GenerateCommand.outputFiles(Path.of("img"), 2));
    }

    @Test
    void progressClock() {
        assertEquals("0:07", ProgressBar.clock(7.4));
        assertEquals("2:05", ProgressBar.clock(125));
        assertEquals("1:00:01", ProgressBar.clock(3601));
    }
}
