package dev.sdjvm.backend.neuron;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
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

    /**
     * The tiny sim-neuron model in the layout {@code optimum-cli export neuron --task stable-diffusion} writes:
     * {@code model_index.json}, {@code tokenizer/}, {@code scheduler/} and per component ({@code text_encoder},
     * {@code unet}, {@code vae_decoder}, {@code vae_encoder}) a {@code model.neuron} TorchScript-style archive carrying
     * the NEFF plus the component's {@code config.json} with optimum-neuron's {@code neuron} section (compiled static
     * shapes, dtypes, {@code inline_weights_to_neff}). There is no {@code vae/}, no {@code compiled_models/} and no
     * post_quant_conv artifact: the decoder's program ({@code fn vae_decode}) runs post_quant_conv then the decoder,
     * as diffusers' {@code vae.decode} does. The UNet config keeps a checkpoint {@code sample_size} (96, as SD 2.1's)
     * other than the compiled latent size (8), as optimum-neuron's does.
     *
     * @param inlineWeights the value written to every component's {@code neuron.inline_weights_to_neff}
     */
    public static Path optimumNeuron(Path dir, boolean inlineWeights) throws IOException {
        Path src = NrtSim.model("sim-neuron", dir.resolveSibling(dir.getFileName() + "-src"));
        ObjectMapper json = new ObjectMapper();
        Files.createDirectories(dir);
        dev.sdjvm.TestModels.copy(src.resolve("tokenizer"), dir.resolve("tokenizer"));
        dev.sdjvm.TestModels.copy(src.resolve("scheduler"), dir.resolve("scheduler"));
        Files.copy(src.resolve("model_index.json"), dir.resolve("model_index.json"));
        Map<String, String> configOf = new LinkedHashMap<>();
        configOf.put("text_encoder", "text_encoder/config.json");
        configOf.put("unet", "unet/config.json");
        configOf.put("vae_decoder", "vae/config.json");
        configOf.put("vae_encoder", "vae/config.json");
        for (var e : configOf.entrySet()) {
            String component = e.getKey();
            Path out = Files.createDirectories(dir.resolve(component));
            ObjectNode c = (ObjectNode) json.readTree(src.resolve(e.getValue()).toFile());
            ObjectNode n = c.putObject("neuron");
            n.put("compiler_type", "neuronx-cc");
            n.put("compiler_version", "2.21.18209.0+043b1bf7");
            n.put("inline_weights_to_neff", inlineWeights);
            n.put("dynamic_batch_size", false);
            n.put("tensor_parallel_size", 1);
            n.put("auto_cast", "matmul");
            n.put("auto_cast_type", "bf16");
            n.put("optlevel", "2");
            n.put("int_dtype", "int64");
            n.put("float_dtype", component.equals("unet") || component.equals("text_encoder") ? "bf16" : "fp32");
            n.put("static_batch_size", 1);
            switch (component) {
                case "text_encoder" -> n.put("static_sequence_length", 77);
                case "unet" -> {
                    c.put("sample_size", 96);
                    n.put("static_height", 8);
                    n.put("static_width", 8);
                    n.put("static_num_channels", 4);
                    n.put("static_sequence_length", 77);
                    n.put("static_vae_scale_factor", 8);
                }
                case "vae_decoder" -> {
                    n.put("static_height", 8);
                    n.put("static_width", 8);
                    n.put("static_num_channels", 4);
                }
                default -> {
                    n.put("static_height", 64);
                    n.put("static_width", 64);
                    n.put("static_num_channels", 3);
                }
            }
            c.put("model_type", component.equals("text_encoder") ? "clip-text-model" : component.replace("_", "-"));
            json.writerWithDefaultPrettyPrinter().writeValue(out.resolve("config.json").toFile(), c);
            byte[] neff = component.equals("vae_decoder")
                    ? NeffFiles.neffWithProgram("vae_decoder", "nrtsim 1\nfn vae_decode\nin input0 float32 1 4 8 8\n"
                    + "out output0 float32 1 3 64 64\n")
                    : Files.readAllBytes(src.resolve("neff/" + component + ".neff"));
            Map<String, byte[]> records = new LinkedHashMap<>();
            records.put("model/data.pkl", new byte[] {(byte) 0x80, 2, '.'});
            records.put("model/code/__torch__.py", "torch.ops.neuron.forward_v2(argument_1, model)\n"
                    .getBytes(java.nio.charset.StandardCharsets.UTF_8));
            records.put("model/constants/0", neff);
            NeffFiles.zip(out.resolve(dev.sdjvm.model.ModelDirectory.OPTIMUM_FILE_NAME), records, false);
        }
        return dir;
    }
}
