package dev.sdjvm.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdjvm.GenerationRequest;
import dev.sdjvm.errors.InvalidRequestException;
import dev.sdjvm.errors.RequestLimitException;
import dev.sdjvm.image.ImageInputs;
import dev.sdjvm.image.RgbImage;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * Turns an {@code /invocations} body into a {@link GenerationRequest}:
 * {@code {"prompt": "...", "image": "<base64>", "mask_image": "<base64>", "parameters": {...}}} with diffusers'
 * argument names, or a {@code text/plain} prompt. The inputs are top-level keys, like the prompt: {@code image}
 * (image-to-image, or inpainting with {@code mask_image}) and {@code mask_image}, each a base64 PNG or JPEG (a
 * {@code data:image/...;base64,} prefix is accepted); the call's settings, {@code strength} among them, are in
 * {@code parameters}. Unknown keys and values of the wrong type are rejected naming the field; an image that does not
 * decode is a 400 and one over the pixel limit a 413, before its pixels are decoded.
 */
final class InvocationParser {
    static final ObjectMapper JSON = new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    /** Top-level keys. {@code inputs} is accepted for {@code prompt} (Hugging Face's convention). */
    static final Set<String> TOP = Set.of("prompt", "inputs", "image", "mask_image", "parameters");
    /** The parameters, with diffusers' {@code __call__} names. */
    static final Set<String> PARAMETERS = Set.of("negative_prompt", "num_inference_steps", "guidance_scale", "seed",
            "scheduler", "scheduler_overrides", "num_images_per_prompt", "height", "width", "strength",
            "guidance_rescale");

    private InvocationParser() {
    }

    /** Parses a JSON body, with images of at most {@link ImageInputs#MAX_PIXELS} pixels. */
    static GenerationRequest.Builder json(byte[] body) {
        return json(body, ImageInputs.MAX_PIXELS);
    }

    /**
     * Parses a JSON body.
     *
     * @param body           the body
     * @param maxImagePixels the largest image (width x height) decoded: the work budget's {@code max_image_pixels}
     */
    static GenerationRequest.Builder json(byte[] body, long maxImagePixels) {
        JsonNode root;
        try {
            root = JSON.readTree(body);
        } catch (JsonProcessingException e) {
            throw new HttpError(400, null, "invalid JSON: " + e.getOriginalMessage());
        } catch (java.io.IOException e) {
            throw new HttpError(400, null, "invalid JSON: " + e.getMessage());
        }
        if (root == null || !root.isObject()) {
            throw new HttpError(400, null, "the body must be a JSON object {\"prompt\": \"...\", \"parameters\": {...}}");
        }
        for (var it = root.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!TOP.contains(k)) {
                throw new HttpError(400, k, "unknown key '" + k + "' (expected prompt, image, mask_image, "
                        + "parameters)");
            }
        }
        if (root.has("prompt") && root.has("inputs")) {
            throw new HttpError(400, "inputs", "give either prompt or inputs, not both");
        }
        String promptKey = root.has("inputs") ? "inputs" : "prompt";
        JsonNode p = root.get(promptKey);
        if (p == null || p.isNull()) {
            throw new HttpError(400, "prompt", "missing");
        }
        if (!p.isTextual()) {
            throw new HttpError(400, promptKey, "must be a string, got " + type(p));
        }
        GenerationRequest.Builder b = GenerationRequest.builder(p.textValue());
        b.initImage(image(root, "image", maxImagePixels));
        b.mask(image(root, "mask_image", maxImagePixels));
        JsonNode params = root.get("parameters");
        if (params == null || params.isNull()) {
            return b;
        }
        if (!params.isObject()) {
            throw new HttpError(400, "parameters", "must be an object, got " + type(params));
        }
        for (var e : params.properties()) {
            String k = e.getKey();
            JsonNode v = e.getValue();
            if (!PARAMETERS.contains(k)) {
                throw new HttpError(400, k, "unknown parameter '" + k + "' (known: negative_prompt, "
                        + "num_inference_steps, guidance_scale, seed, scheduler, scheduler_overrides, "
                        + "num_images_per_prompt, height, width, strength, guidance_rescale)");
            }
            if (v.isNull()) {
                continue;  // null = the default, as Python's None
            }
            switch (k) {
                case "negative_prompt": b.negativePrompt(string(k, v)); break;
                case "num_inference_steps": b.steps(integer(k, v)); break;
                case "guidance_scale": b.guidanceScale(number(k, v)); break;
                case "seed": {
                    if (!v.isIntegralNumber() || !v.canConvertToLong()) {
                        throw new HttpError(400, k, "must be an integer, got " + v);
                    }
                    long s = v.longValue();
                    if (s < 0) {
                        throw new HttpError(400, k, "must be >= 0, got " + s);
                    }
                    b.seed(s);
                    break;
                }
                case "scheduler": b.scheduler(string(k, v)); break;
                case "scheduler_overrides": {
                    if (!v.isObject()) {
                        throw new HttpError(400, k, "must be an object of diffusers config keys, got " + type(v));
                    }
                    @SuppressWarnings("unchecked")
                    Map<String, Object> m = JSON.convertValue(v, LinkedHashMap.class);
                    b.schedulerOverrides(m);
                    break;
                }
                case "num_images_per_prompt": b.numImages(integer(k, v)); break;
                case "height": b.height(integer(k, v)); break;
                case "width": b.width(integer(k, v)); break;
                case "strength": b.strength(number(k, v)); break;
                case "guidance_rescale": b.guidanceRescale(number(k, v)); break;
                default: throw new IllegalStateException(k);
            }
        }
        return b;
    }

    /**
     * A top-level base64 image, decoded as diffusers' {@code load_image} would ({@link ImageInputs#decode}); null
     * when absent or JSON null.
     */
    private static RgbImage image(JsonNode root, String k, long maxPixels) {
        JsonNode v = root.get(k);
        if (v == null || v.isNull()) {
            return null;
        }
        if (!v.isTextual()) {
            throw new HttpError(400, k, "must be a base64 PNG or JPEG string, got " + type(v));
        }
        String text = v.textValue();
        if (text.startsWith("data:")) {
            int comma = text.indexOf(',');
            if (comma < 0 || !text.substring(0, comma).endsWith(";base64")) {
                throw new HttpError(400, k, "a data URL must be base64: data:image/png;base64,...");
            }
            text = text.substring(comma + 1);
        }
        byte[] bytes;
        try {
            bytes = Base64.getMimeDecoder().decode(text);  // line breaks are fine, as in MIME
        } catch (IllegalArgumentException e) {
            throw new HttpError(400, k, "not base64: " + e.getMessage());
        }
        try {
            return ImageInputs.decode(bytes, k, maxPixels);
        } catch (RequestLimitException e) {
            throw new HttpError(413, k, e.getMessage() + " (server --max-image-pixels)");
        } catch (InvalidRequestException e) {
            throw new HttpError(400, k, e.getMessage());
        }
    }

    private static String string(String k, JsonNode v) {
        if (!v.isTextual()) {
            throw new HttpError(400, k, "must be a string, got " + type(v));
        }
        return v.textValue();
    }

    private static int integer(String k, JsonNode v) {
        if (v.isIntegralNumber() && v.canConvertToInt()) {
            return v.intValue();
        }
        // 20.0 is an integer too (Python clients send floats sometimes)
        if (v.isFloatingPointNumber() && v.doubleValue() == Math.rint(v.doubleValue())
                && Math.abs(v.doubleValue()) <= Integer.MAX_VALUE) {
            return (int) v.doubleValue();
        }
        throw new HttpError(400, k, "must be an integer, got " + v);
    }

    private static double number(String k, JsonNode v) {
        if (!v.isNumber()) {
            throw new HttpError(400, k, "must be a number, got " + type(v));
        }
        return v.doubleValue();
    }

    private static String type(JsonNode n) {
        return n.getNodeType().name().toLowerCase(java.util.Locale.ROOT) + (n.isValueNode() ? " " + n : "");
    }
}
