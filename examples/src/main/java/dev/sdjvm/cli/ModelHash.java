package dev.sdjvm.cli;

import dev.sdjvm.ModelInfo;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;

/**
 * The {@code Model hash} of the PNG parameters: as AUTOMATIC1111's short hash of a checkpoint (the first 10 hex
 * digits of its SHA-256), over this layout's weights: the SHA-256 of the four artifact files' bytes, one after the
 * other, in the order text_encoder, unet, vae_post_quant_conv, vae_decoder. Two model directories with the same
 * artifacts have the same hash, whatever their configs or paths. Reading the files costs about as long as reading
 * the weights once (an 11 MB model: milliseconds; a full SD 2.1 export of 5 GB: seconds).
 */
public final class ModelHash {
    /** The artifact roles in hashing order. */
    public static final List<String> ROLES = List.of("text_encoder", "unet", "vae_post_quant_conv", "vae_decoder");

    private ModelHash() {
    }

    /**
     * The hash of a loaded model's artifacts.
     *
     * @param info the model
     * @return 10 lower-case hex digits
     * @throws IOException if an artifact cannot be read
     */
    public static String of(ModelInfo info) throws IOException {
        List<Path> files = new ArrayList<>();
        for (String role : ROLES) {
            ModelInfo.Artifact a = info.artifacts().get(role);
            if (a == null) {
                throw new IOException("no " + role + " artifact to hash");
            }
            files.add(a.file());
        }
        return ofFiles(files);
    }

    /**
     * The hash of files read one after the other.
     *
     * @param files the files, in order
     * @return 10 lower-case hex digits
     * @throws IOException if a file cannot be read
     */
    public static String ofFiles(List<Path> files) throws IOException {
        MessageDigest md;
        try {
            md = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);  // every JDK has SHA-256
        }
        byte[] buf = new byte[1 << 20];
        for (Path f : files) {
            try (InputStream in = Files.newInputStream(f)) {
                for (int n = in.read(buf); n > 0; n = in.read(buf)) {
                    md.update(buf, 0, n);
                }
            }
        }
        return HexFormat.of().formatHex(md.digest()).substring(0, 10);
    }
}
