package dev.sdjvm.examples;

import dev.sdjvm.StableDiffusion;
import java.awt.image.BufferedImage;
import java.io.File;
import javax.imageio.ImageIO;

public class QuickStart {
    public static void main(String[] args) throws Exception {
        // the small model embedded in the library; StableDiffusion.load(Path.of("sd2_512_root")) for a real one
        try (StableDiffusion sd = StableDiffusion.loadDefault()) {
            BufferedImage image = sd.generate("a red circle on a blue background");
            ImageIO.write(image, "png", new File("circle.png"));
        }
    }
}
