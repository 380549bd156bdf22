package dev.sdjvm.backend.neuron;

import dev.sdjvm.errors.BackendException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * NeuronCore discovery without the runtime: device nodes {@code /dev/neuron<N>} and the Neuron driver's sysfs
 * attribute {@code /sys/devices/virtual/neuron_device/neuron<N>/core_count} (also reachable as
 * {@code /sys/class/neuron_device/neuron<N>/core_count}), then the visibility variables the runtime honours:
 * {@code NEURON_RT_VISIBLE_CORES} ({@code "2"}, {@code "0-1"}, {@code "0,1,3"}, {@code "0-1,4"}) and
 * {@code NEURON_RT_NUM_CORES} (a count; 0 = all).
 *
 * <p>Core ids are global: device N's cores are numbered after those of devices 0..N-1, as the runtime numbers them.
 * When sysfs has no {@code core_count} (older drivers, containers without /sys), a device is assumed to have
 * {@value #DEFAULT_CORES_PER_DEVICE} cores (Inferentia2 and Trainium1 have two NeuronCore-v2 per device).
 *
 * <p>The file system root and the environment are injectable so that tests run on a fake tree.
 */
public final class NeuronDevices {
    private static final Logger LOG = LoggerFactory.getLogger(NeuronDevices.class);
    private static final Pattern DEVICE = Pattern.compile("neuron(\\d+)");

    /** NeuronCores per device when sysfs does not say (Inferentia2 / Trainium1). */
    public static final int DEFAULT_CORES_PER_DEVICE = 2;
    /** The runtime's core-visibility variable. */
    public static final String VISIBLE_CORES_ENV = "NEURON_RT_VISIBLE_CORES";
    /** The runtime's core-count variable. */
    public static final String NUM_CORES_ENV = "NEURON_RT_NUM_CORES";

    /** One Neuron device: its index, its device node and its core count (and whether sysfs gave it). */
    public record Device(int index, Path node, int cores, boolean coreCountFromSysfs) {}

    private final List<Device> devices;
    private final List<Integer> visible;

    private NeuronDevices(List<Device> devices, List<Integer> visible) {
        this.devices = devices;
        this.visible = visible;
    }

    /** Discovery on this machine ({@code /}) with the process environment. */
    public static NeuronDevices discover() {
        return discover(Path.of("/"), System.getenv());
    }

    /**
     * Discovery under {@code root} (which holds {@code dev/} and {@code sys/}) with the given environment.
     *
     * @throws BackendException when a visibility variable is malformed or names cores that do not exist
     */
    public static NeuronDevices discover(Path root, Map<String, String> env) {
        TreeMap<Integer, Path> nodes = new TreeMap<>();
        Path dev = root.resolve("dev");
        if (Files.isDirectory(dev)) {
            try (DirectoryStream<Path> ds = Files.newDirectoryStream(dev, "neuron*")) {
                for (Path p : ds) {
                    Matcher m = DEVICE.matcher(p.getFileName().toString());
                    if (m.matches()) {
                        nodes.put(Integer.parseInt(m.group(1)), p);
                    }
                }
            } catch (IOException e) {
                LOG.warn("cannot list {}: {}", dev, e.toString());
            }
        }
        List<Device> list = new ArrayList<>();
        for (Map.Entry<Integer, Path> e : nodes.entrySet()) {
            Integer sys = coreCount(root, e.getKey());
            list.add(new Device(e.getKey(), e.getValue(), sys == null ? DEFAULT_CORES_PER_DEVICE : sys, sys != null));
        }
        int total = list.stream().mapToInt(Device::cores).sum();
        List<Integer> vis = visibleCores(total, env.get(VISIBLE_CORES_ENV), env.get(NUM_CORES_ENV));
        return new NeuronDevices(Collections.unmodifiableList(list), vis);
    }

    private static Integer coreCount(Path root, int index) {
        for (String dir : new String[] {"sys/devices/virtual/neuron_device", "sys/class/neuron_device"}) {
            Path f = root.resolve(dir).resolve("neuron" + index).resolve("core_count");
            if (Files.isRegularFile(f)) {
                try {
                    int n = Integer.parseInt(Files.readString(f, StandardCharsets.US_ASCII).trim());
                    if (n > 0) {
                        return n;
                    }
                    LOG.warn("{} says {} cores; ignored", f, n);
                } catch (IOException | NumberFormatException e) {
                    LOG.warn("cannot read {}: {}", f, e.toString());
                }
            }
        }
        return null;
    }

    /**
     * The visible core ids, in increasing order, for {@code total} cores and the two variables' values (null =
     * unset). {@code NEURON_RT_VISIBLE_CORES} wins when both are set; {@code NEURON_RT_NUM_CORES=n} alone selects
     * the first n cores (0 = all).
     *
     * @throws BackendException for malformed values or core ids beyond {@code total}
     */
    public static List<Integer> visibleCores(int total, String visibleSpec, String numCores) {
        if (visibleSpec != null && !visibleSpec.isBlank()) {
            TreeSet<Integer> ids = parseCoreList(visibleSpec);
            if (!ids.isEmpty() && ids.last() >= total) {
                throw new BackendException(VISIBLE_CORES_ENV + "=" + visibleSpec + " names core " + ids.last()
                        + " but this machine has " + total + " NeuronCore(s)" + (total == 0 ? " (no /dev/neuron*)" : "")
                        + "; valid ids are 0.." + (total - 1));
            }
            if (numCores != null && !numCores.isBlank()) {
                LOG.warn("{} and {} are both set; using {}={}", VISIBLE_CORES_ENV, NUM_CORES_ENV, VISIBLE_CORES_ENV,
                        visibleSpec);
            }
            return List.copyOf(ids);
        }
        int n = total;
        if (numCores != null && !numCores.isBlank()) {
            try {
                n = Integer.parseInt(numCores.trim());
            } catch (NumberFormatException e) {
                throw new BackendException(NUM_CORES_ENV + "=" + numCores + " is not a number of cores");
            }
            if (n < 0) {
                throw new BackendException(NUM_CORES_ENV + "=" + numCores + " is negative");
            }
            if (n == 0) {
                n = total;
            }
            if (n > total) {
                throw new BackendException(NUM_CORES_ENV + "=" + numCores + " asks for more NeuronCores than the "
                        + total + " present");
            }
        }
        List<Integer> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            out.add(i);
        }
        return Collections.unmodifiableList(out);
    }

    /** Parses {@code "2"}, {@code "0-1"}, {@code "0,1,3"}, {@code "0-1,4-5"} into a sorted set of core ids. */
    static TreeSet<Integer> parseCoreList(String spec) {
        TreeSet<Integer> ids = new TreeSet<>();
        for (String part : spec.split(",")) {
            String p = part.trim();
            if (p.isEmpty()) {
                throw new BackendException(VISIBLE_CORES_ENV + "=" + spec + " has an empty element");
            }
            try {
                int dash = p.indexOf('-');
                if (dash < 0) {
                    ids.add(nonNegative(Integer.parseInt(p), spec));
                } else {
                    int a = nonNegative(Integer.parseInt(p.substring(0, dash).trim()), spec);
                    int b = nonNegative(Integer.parseInt(p.substring(dash + 1).trim()), spec);
                    if (b < a) {
                        throw new BackendException(VISIBLE_CORES_ENV + "=" + spec + ": range " + p + " is descending");
                    }
                    for (int i = a; i <= b; i++) {
                        ids.add(i);
                    }
                }
            } catch (NumberFormatException e) {
                throw new BackendException(VISIBLE_CORES_ENV + "=" + spec + ": '" + p
                        + "' is not a core id or a range like 0-1");
            }
        }
        return ids;
    }

    private static int nonNegative(int v, String spec) {
        if (v < 0) {
            throw new BackendException(VISIBLE_CORES_ENV + "=" + spec + " has a negative core id");
        }
        return v;
    }

    /** The devices found (by index). */
    public List<Device> devices() {
        return devices;
    }

    /** True when at least one {@code /dev/neuron<N>} exists. */
    public boolean present() {
        return !devices.isEmpty();
    }

    /** All NeuronCores on the machine. */
    public int totalCores() {
        return devices.stream().mapToInt(Device::cores).sum();
    }

    /** The core ids this process may use (after the visibility variables), increasing. */
    public List<Integer> visibleCores() {
        return visible;
    }

    /**
     * Splits the visible cores into consecutive disjoint groups of {@code k} (throughput mode: one pipeline per
     * group). Cores left over when the count is not a multiple of k are not used (logged).
     *
     * @throws IllegalArgumentException when k &lt; 1
     * @throws BackendException when fewer than k cores are visible
     */
    public List<List<Integer>> groups(int k) {
        return groups(visible, k);
    }

    /** {@link #groups(int)} on an explicit list of core ids. */
    public static List<List<Integer>> groups(List<Integer> cores, int k) {
        if (k < 1) {
            throw new IllegalArgumentException("group size must be >= 1, was " + k);
        }
        if (cores.size() < k) {
            throw new BackendException("need " + k + " NeuronCore(s) per pipeline but only " + cores.size()
                    + " are visible " + cores);
        }
        List<List<Integer>> out = new ArrayList<>();
        for (int i = 0; i + k <= cores.size(); i += k) {
            out.add(List.copyOf(cores.subList(i, i + k)));
        }
        int left = cores.size() % k;
        if (left != 0) {
            LOG.info("{} NeuronCore(s) {} left unused by groups of {}", left, cores.subList(cores.size() - left,
                    cores.size()), k);
        }
        return Collections.unmodifiableList(out);
    }

    /** The {@code NEURON_RT_VISIBLE_CORES} value selecting exactly {@code cores} ("0-1", "2", "0,2"). */
    public static String visibleCoresValue(List<Integer> cores) {
        if (cores.isEmpty()) {
            throw new IllegalArgumentException("no cores");
        }
        List<Integer> sorted = new ArrayList<>(new TreeSet<>(cores));
        boolean contiguous = sorted.get(sorted.size() - 1) - sorted.get(0) == sorted.size() - 1;
        if (sorted.size() == 1) {
            return String.valueOf(sorted.get(0));
        }
        if (contiguous) {
            return sorted.get(0) + "-" + sorted.get(sorted.size() - 1);
        }
        StringBuilder sb = new StringBuilder();
        for (int c : sorted) {
            if (sb.length() > 0) {
                sb.append(',');
            }
            sb.append(c);
        }
        return sb.toString();
    }

    @Override
    public String toString() {
        return devices.size() + " Neuron device(s), " + totalCores() + " NeuronCore(s), visible " + visible;
    }
}
