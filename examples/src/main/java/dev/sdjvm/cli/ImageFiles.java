package dev.sdjvm.cli;

import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import javax.imageio.IIOImage;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.ImageTypeSpecifier;
import javax.imageio.ImageWriteParam;
import javax.imageio.ImageWriter;
import javax.imageio.metadata.IIOMetadata;
import javax.imageio.metadata.IIOMetadataNode;
import javax.imageio.stream.ImageInputStream;
import javax.imageio.stream.ImageOutputStream;
import javax.imageio.stream.MemoryCacheImageInputStream;
import javax.imageio.stream.MemoryCacheImageOutputStream;
import org.w3c.dom.Node;

/**
 * Encodes images as PNG (with text chunks, e.g. the generation {@code parameters}) or JPEG, with {@code javax.imageio}.
 * Streams are memory-cached: ImageIO's default file cache registers a JVM shutdown hook per stream, which fails
 * while the server drains after SIGTERM (and writes temporary files for nothing).
 */
public final class ImageFiles {
    /** PNG native metadata format name of the JDK's PNG plug-in. */
    public static final String PNG_FORMAT = "javax_imageio_png_1.0";
    /** JPEG quality used for {@link Format#JPEG}. */
    public static final float JPEG_QUALITY = 0.92f;

    /** Output formats. */
    public enum Format {
        PNG("png", "image/png"), JPEG("jpeg", "image/jpeg");

        private final String extension;
        private final String mediaType;

        Format(String extension, String mediaType) {
            this.extension = extension;
            this.mediaType = mediaType;
        }

        /** The file extension without dot ({@code png}, {@code jpeg}). */
        public String extension() {
            return extension;
        }

        /** The media type ({@code image/png}, {@code image/jpeg}). */
        public String mediaType() {
            return mediaType;
        }

        /** {@code png}, {@code jpeg}/{@code jpg} (any case), or null. */
        public static Format parse(String s) {
            if (s == null) {
                return null;
            }
            switch (s.trim().toLowerCase(Locale.ROOT)) {
                case "png":
                    return PNG;
                case "jpeg": case "jpg":
                    return JPEG;
                default:
                    return null;
            }
        }

        /** The format a file name's extension names, or null. */
        public static Format ofFileName(String name) {
            int dot = name.lastIndexOf('.');
            return dot < 0 ? null : parse(name.substring(dot + 1));
        }
    }

    private ImageFiles() {
    }

    /** Encodes an image; PNG gets the text chunks (keyword -&gt; text), JPEG ignores them. */
    public static byte[] encode(BufferedImage img, Format format, Map<String, String> text) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream(img.getWidth() * img.getHeight() * 2 + 1024);
        write(img, format, text, out);
        return out.toByteArray();
    }

    /**
     * Writes an image file: encoded in memory first, so that a failing file system reports its own error (e.g. "No
     * space left on device") rather than ImageIO's "I/O error writing PNG file!".
     */
    public static void write(BufferedImage img, Format format, Map<String, String> text, Path file) throws IOException {
        Files.write(file, encode(img, format, text));
    }

    /**
     * Why an I/O operation failed, in words: the innermost cause's message, with "disk full" or "permission denied"
     * spelled out where the system's message is terse.
     */
    public static String reason(IOException e) {
        Throwable t = e;
        while (t.getCause() != null && t.getCause() != t) {
            t = t.getCause();
        }
        String m = t instanceof java.nio.file.AccessDeniedException ? "permission denied"
                : t instanceof java.nio.file.NoSuchFileException ? "no such file or directory"
                : t.getMessage() == null ? t.getClass().getSimpleName() : t.getMessage();
        if (t instanceof java.nio.file.FileSystemException fse && fse.getReason() != null) {
            m = fse.getReason();
        }
        return m.contains("No space left") ? m + " (the disk is full)" : m;
    }

    /** Writes an image to a stream (not closed). */
    public static void write(BufferedImage img, Format format, Map<String, String> text, OutputStream out)
            throws IOException {
        if (format == Format.PNG) {
            writePng(img, text == null ? Map.of() : text, out);
        } else {
            writeJpeg(img, out);
        }
    }

    private static void writePng(BufferedImage img, Map<String, String> text, OutputStream out) throws IOException {
        ImageWriter w = ImageIO.getImageWritersByFormatName("png").next();
        try (ImageOutputStream ios = new MemoryCacheImageOutputStream(out)) {
            ImageWriteParam p = w.getDefaultWriteParam();
            IIOMetadata md = w.getDefaultImageMetadata(ImageTypeSpecifier.createFromRenderedImage(img), p);
            if (!text.isEmpty()) {
                IIOMetadataNode root = new IIOMetadataNode(PNG_FORMAT);
                IIOMetadataNode latin = new IIOMetadataNode("tEXt");
                IIOMetadataNode intl = new IIOMetadataNode("iTXt");
                for (var e : text.entrySet()) {
                    if (StandardCharsets.ISO_8859_1.newEncoder().canEncode(e.getValue())) {
                        // tEXt holds Latin-1 text (PNG spec 11.3.4.3), as PIL writes it for A1111 when it can
                        IIOMetadataNode n = new IIOMetadataNode("tEXtEntry");
                        n.setAttribute("keyword", e.getKey());
                        n.setAttribute("value", e.getValue());
                        latin.appendChild(n);
                    } else {
                        // anything else goes to an uncompressed UTF-8 iTXt chunk, as PIL does
                        IIOMetadataNode n = new IIOMetadataNode("iTXtEntry");
                        n.setAttribute("keyword", e.getKey());
                        n.setAttribute("compressionFlag", "FALSE");
                        n.setAttribute("compressionMethod", "0");
                        n.setAttribute("languageTag", "");
                        n.setAttribute("translatedKeyword", "");
                        n.setAttribute("text", e.getValue());
                        intl.appendChild(n);
                    }
                }
                if (latin.getLength() > 0) {
                    root.appendChild(latin);
                }
                if (intl.getLength() > 0) {
                    root.appendChild(intl);
                }
                md.mergeTree(PNG_FORMAT, root);
            }
            w.setOutput(ios);
            w.write(null, new IIOImage(img, null, md), p);
        } finally {
            w.dispose();
        }
    }

    private static void writeJpeg(BufferedImage img, OutputStream out) throws IOException {
        ImageWriter w = ImageIO.getImageWritersByFormatName("jpeg").next();
        try (ImageOutputStream ios = new MemoryCacheImageOutputStream(out)) {
            ImageWriteParam p = w.getDefaultWriteParam();
            p.setCompressionMode(ImageWriteParam.MODE_EXPLICIT);
            p.setCompressionQuality(JPEG_QUALITY);
            w.setOutput(ios);
            w.write(null, new IIOImage(img, null, null), p);
        } finally {
            w.dispose();
        }
    }

    /** Reads the tEXt and iTXt chunks of a PNG (keyword -&gt; text), in file order. */
    public static Map<String, String> readPngText(byte[] png) throws IOException {
        Map<String, String> out = new LinkedHashMap<>();
        try (ImageInputStream in = new MemoryCacheImageInputStream(new ByteArrayInputStream(png))) {
            Iterator<ImageReader> it = ImageIO.getImageReaders(in);
            if (!it.hasNext()) {
                throw new IOException("not an image");
            }
            ImageReader r = it.next();
            try {
                r.setInput(in);
                Node root = r.getImageMetadata(0).getAsTree(PNG_FORMAT);
                for (Node c = root.getFirstChild(); c != null; c = c.getNextSibling()) {
                    for (Node e = c.getFirstChild(); e != null; e = e.getNextSibling()) {
                        var a = e.getAttributes();
                        if ("tEXtEntry".equals(e.getNodeName())) {
                            out.put(a.getNamedItem("keyword").getNodeValue(), a.getNamedItem("value").getNodeValue());
                        } else if ("iTXtEntry".equals(e.getNodeName())) {
                            out.put(a.getNamedItem("keyword").getNodeValue(), a.getNamedItem("text").getNodeValue());
                        }
                    }
                }
            } finally {
                r.dispose();
            }
        }
        return out;
    }
}
