package dev.sdjvm.image;

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
 * PNG files with text chunks (keyword -&gt; text), with {@code javax.imageio}: what PIL writes for
 * {@code PngInfo.add_text}. Text that Latin-1 can hold goes into a {@code tEXt} chunk (PNG spec 11.3.4.3; the chunk
 * AUTOMATIC1111-style readers look at for {@code parameters}), other text into an uncompressed UTF-8 {@code iTXt}
 * chunk, as PIL does. Streams are memory-cached: ImageIO's default file cache registers a JVM shutdown hook per
 * stream (which fails while a server drains after SIGTERM) and writes temporary files for nothing.
 */
public final class PngFiles {
    /** PNG native metadata format name of the JDK's PNG plug-in. */
    public static final String PNG_FORMAT = "javax_imageio_png_1.0";

    private PngFiles() {
    }

    /**
     * {@return the PNG bytes of an image with text chunks}
     *
     * @param image the image
     * @param text  keyword -&gt; text, in chunk order; may be empty
     * @throws IOException if the image cannot be encoded
     */
    public static byte[] encode(RgbImage image, Map<String, String> text) throws IOException {
        return encode(image.toBufferedImage(), text);
    }

    /**
     * {@return the PNG bytes of an image with text chunks}
     *
     * @param image the image
     * @param text  keyword -&gt; text, in chunk order; may be empty or null
     * @throws IOException if the image cannot be encoded
     */
    public static byte[] encode(BufferedImage image, Map<String, String> text) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream(image.getWidth() * image.getHeight() * 2 + 1024);
        write(image, text, out);
        return out.toByteArray();
    }

    /**
     * Writes a PNG file with text chunks (created, or replaced).
     *
     * @param image the image
     * @param text  keyword -&gt; text, in chunk order; may be empty or null
     * @param file  the file
     * @throws IOException if the file cannot be written
     */
    public static void write(RgbImage image, Map<String, String> text, Path file) throws IOException {
        try (OutputStream out = Files.newOutputStream(file)) {
            write(image.toBufferedImage(), text, out);
        }
    }

    /**
     * Writes a PNG with text chunks to a stream (left open).
     *
     * @param image the image
     * @param text  keyword -&gt; text, in chunk order; may be empty or null
     * @param out   the stream
     * @throws IOException if writing fails
     */
    public static void write(BufferedImage image, Map<String, String> text, OutputStream out) throws IOException {
        ImageWriter w = ImageIO.getImageWritersByFormatName("png").next();
        try (ImageOutputStream ios = new MemoryCacheImageOutputStream(out)) {
            ImageWriteParam p = w.getDefaultWriteParam();
            IIOMetadata md = w.getDefaultImageMetadata(ImageTypeSpecifier.createFromRenderedImage(image), p);
            if (text != null && !text.isEmpty()) {
                IIOMetadataNode root = new IIOMetadataNode(PNG_FORMAT);
                IIOMetadataNode latin = new IIOMetadataNode("tEXt");
                IIOMetadataNode intl = new IIOMetadataNode("iTXt");
                for (var e : text.entrySet()) {
                    if (StandardCharsets.ISO_8859_1.newEncoder().canEncode(e.getValue())) {
                        IIOMetadataNode n = new IIOMetadataNode("tEXtEntry");
                        n.setAttribute("keyword", e.getKey());
                        n.setAttribute("value", e.getValue());
                        latin.appendChild(n);
                    } else {
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
            w.write(null, new IIOImage(image, null, md), p);
        } finally {
            w.dispose();
        }
    }

    /**
     * {@return the tEXt and iTXt chunks of a PNG file (keyword -&gt; text), in file order}
     *
     * @param file the PNG file
     * @throws IOException if it cannot be read or is not an image
     */
    public static Map<String, String> readText(Path file) throws IOException {
        return readText(Files.readAllBytes(file));
    }

    /**
     * {@return the tEXt and iTXt chunks of a PNG (keyword -&gt; text), in file order}
     *
     * @param png the PNG bytes
     * @throws IOException if they are not an image
     */
    public static Map<String, String> readText(byte[] png) throws IOException {
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
