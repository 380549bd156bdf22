package dev.sdjvm.backend.neuron;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * Model directories for the simulated runtime at any size (tests and benchmarks; the committed {@code sim-neuron}
 * fixture is the tiny one made by tools/reference/make_sim_model.py): the fixture's configs with the latent size and
 * hidden size changed, and NEFFs with the simulator's programs for that geometry, each inside a {@code .pt} zip
 * record. {@code delayUs} stands in for device time per execute.
 */
public final class SimModels {
    private SimModels() {
    }

    /**
     * SD 2.1-base at 512x512: latents 4x64x64, hidden 1024, AWS's dtypes (bf16 text encoder and UNet, fp32 VAE),
     * static batch 1.
     */
    public static Path sd21(Path dir, int unetDelayUs) throws IOException {
        return write(dir, 64, 1024, unetDelayUs);
    }

    /** A directory of latent size {@code latent}x{@code latent}, text hidden size {@code hidden}. */
    public static Path write(Path dir, int latent, int hidden, int unetDelayUs) throws IOException {
        NrtSim.model("sim-neuron", dir);
        ObjectMapper json = new ObjectMapper();
        Path unetConfig = dir.resolve("unet/config.json");
        ObjectNode u = (ObjectNode) json.readTree(unetConfig.toFile());
        u.put("sample_size", latent);
        u.put("cross_attention_dim", hidden);
        json.writerWithDefaultPrettyPrinter().writeValue(unetConfig.toFile(), u);
        int image = latent * 8;
        Map<String, String> programs = Map.of(
                "text_encoder", "nrtsim 1\nfn text_encoder\nin input0 int64 1 77\nout output0 bfloat16 1 77 " + hidden
                        + "\nout output1 bfloat16 1 " + hidden + "\n",
                "unet", "nrtsim 1\nfn unet\nin input0 bfloat16 1 4 " + latent + " " + latent + "\nin input1 bfloat16 1\n"
                        + "in input2 bfloat16 1 77 " + hidden + "\nout output0 bfloat16 1 4 " + latent + " " + latent
                        + "\ndelay_us " + unetDelayUs + "\n",
                "vae_post_quant_conv", "nrtsim 1\nfn post_quant_conv\nin input0 float32 1 4 " + latent + " " + latent
                        + "\nout output0 float32 1 4 " + latent + " " + latent + "\n",
                "vae_decoder", "nrtsim 1\nfn vae_decoder\nin input0 float32 1 4 " + latent + " " + latent
                        + "\nout output0 float32 1 3 " + image + " " + image + "\n");
        for (var e : programs.entrySet()) {
            byte[] neff = NeffFiles.neffWithProgram(e.getKey(), e.getValue());
            Files.write(dir.resolve("neff/" + e.getKey() + ".neff"), neff);
            NeffFiles.zip(dir.resolve("compiled_models/" + e.getKey() + ".pt"),
                    Map.of(e.getKey() + "/data.pkl", new byte[] {(byte) 0x80, 2, '.'}, e.getKey() + "/data/0", neff), false);
        }
        return dir;
    }
}
