"""The VAE encoder as stable-diffusion-jvm takes it (image-to-image, inpainting): diffusers' AutoencoderKL encoder +
quant_conv, an image [B,3,H,W] in [-1, 1] to the latent distribution's parameters ("moments": mean, then logvar)
[B, 2 x latent_channels, H/8, W/8]. One definition for the CPU trace scripts (trace_cpu_sd21.py, trace_cpu_sdxl.py)
and the Neuron compile scripts (neuron_compile_sd21.py, neuron_compile_sdxl.py); torch is passed in, as they import it
only after parsing their arguments."""


def vae_encoder_wrap(torch, vae, as_dict):
    """A module over vae.encoder and vae.quant_conv (shared, not copied: deep-copy the VAE first to keep it).

    as_dict: optimum-neuron's {"latent_parameters": moments} (the CPU traces, traced with strict=False); else the
    bare tensor (torch_neuronx.trace). The library takes either, and a 1-tuple."""

    class VaeEncoderWrap(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = vae.encoder
            self.quant_conv = vae.quant_conv

        def forward(self, sample):
            moments = self.quant_conv(self.encoder(sample))
            return {"latent_parameters": moments} if as_dict else moments

    return VaeEncoderWrap()
