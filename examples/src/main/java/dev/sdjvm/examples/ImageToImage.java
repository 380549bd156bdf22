package dev.sdjvm.examples;

import dev.sdjvm.GenerationRequest;
import dev.sdjvm.StableDiffusion;
import java.awt.image.BufferedImage;
import java.io.File;
import java.nio.file.Path;
import javax.imageio.ImageIO;

public class ImageToImage {
    public static void main(String[] args) throws Exception {
        // a model with compiled_models/vae_encoder.pt, a start image, and a mask of its size (white = repaint)
        Path model = Path.of(args[0]);
        BufferedImage start = ImageIO.read(new File(args[1]));
        BufferedImage mask = ImageIO.read(new File(args[2]));
        try (StableDiffusion sd = StableDiffusion.load(model)) {
            // image-to-image: the start image noised to 75% of the schedule, then denoised towards the prompt
            GenerationRequest img2img = GenerationRequest.builder("a watercolor painting of a lighthouse")
                    .initImage(start).strength(0.75).steps(20).seed(42L).build();
            ImageIO.write(sd.generate(img2img).image(), "png", new File("img2img.png"));
            // inpainting: the white part of the mask is repainted, the rest follows the start image
            GenerationRequest inpaint = GenerationRequest.builder("a red circle on a blue background")
                    .initImage(start).mask(mask).steps(20).seed(42L).build();
            ImageIO.write(sd.generate(inpaint).image(), "png", new File("inpaint.png"));
        }
    }
}
