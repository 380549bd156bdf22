package dev.sdjvm.backend.neuron;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdjvm.errors.BackendException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** NeuronDevices on fake /dev + /sys trees laid out like the Neuron driver's. */
class NeuronDevicesTest {
    @TempDir
    Path root;

    private void device(int i, Integer cores, String sysDir) throws Exception {
        Files.createDirectories(root.resolve("dev"));
        Files.writeString(root.resolve("dev/neuron" + i), "");
        if (cores != null) {
            Path d = Files.createDirectories(root.resolve(sysDir).resolve("neuron" + i));
            Files.writeString(d.resolve("core_count"), cores + "\n");
        }
    }

    @Test
    void inf2_48xlargeLikeTreeWithSysfsCounts() throws Exception {
        for (int i = 0; i < 12; i++) {
            device(i, 2, "sys/devices/virtual/neuron_device");
        }
        Files.writeString(root.resolve("dev/neuron_other"), ""); // not a device node name we count
        NeuronDevices d = NeuronDevices.discover(root, Map.of());
        assertTrue(d.present());
        assertEquals(12, d.devices().size());
        assertEquals(24, d.totalCores());
        assertTrue(d.devices().stream().allMatch(NeuronDevices.Device::coreCountFromSysfs));
        assertEquals(24, d.visibleCores().size());
        assertEquals(List.of(List.of(0, 1, 2, 3), List.of(4, 5, 6, 7)), d.groups(4).subList(0, 2));
        assertEquals(6, d.groups(4).size());
    }

    @Test
    void classPathAndDefaultCoreCount() throws Exception {
        device(0, 2, "sys/class/neuron_device");
        device(1, null, "unused"); // no sysfs: default 2
        NeuronDevices d = NeuronDevices.discover(root, Map.of());
        assertEquals(4, d.totalCores());
        assertTrue(d.devices().get(0).coreCountFromSysfs());
        assertFalse(d.devices().get(1).coreCountFromSysfs());
    }

    @Test
    void noDevices() {
        NeuronDevices d = NeuronDevices.discover(root, Map.of());
        assertFalse(d.present());
        assertEquals(0, d.totalCores());
        assertEquals(List.of(), d.visibleCores());
        BackendException e = assertThrows(BackendException.class,
                () -> NeuronDevices.discover(root, Map.of("NEURON_RT_VISIBLE_CORES", "0")));
        assertTrue(e.getMessage().contains("no /dev/neuron"), e.getMessage());
    }

    @Test
    void visibilityVariables() throws Exception {
        for (int i = 0; i < 2; i++) {
            device(i, 2, "sys/devices/virtual/neuron_device");
        }
        assertEquals(List.of(0, 1), visible("0-1", null));
        assertEquals(List.of(2), visible("2", null));
        assertEquals(List.of(0, 1, 3), visible("0,1,3", null));
        assertEquals(List.of(0, 2, 3), visible(" 3, 0 ,2-2", null));
        assertEquals(List.of(0, 1, 2), visible(null, "3"));
        assertEquals(List.of(0, 1, 2, 3), visible(null, "0"));
        assertEquals(List.of(1, 2), visible("1-2", "4")); // VISIBLE wins
        for (String bad : new String[] {"4", "1-4", "a", "1-", "2-1", "0,,1", "-1"}) {
            assertThrows(BackendException.class, () -> visible(bad, null), bad);
        }
        assertThrows(BackendException.class, () -> visible(null, "5"));
        assertThrows(BackendException.class, () -> visible(null, "x"));
        assertThrows(BackendException.class, () -> visible(null, "-1"));
    }

    private List<Integer> visible(String vis, String num) {
        Map<String, String> env = new HashMap<>();
        if (vis != null) {
            env.put("NEURON_RT_VISIBLE_CORES", vis);
        }
        if (num != null) {
            env.put("NEURON_RT_NUM_CORES", num);
        }
        return NeuronDevices.discover(root, env).visibleCores();
    }

    @Test
    void groupsAndVisibleValue() {
        assertEquals(List.of(List.of(0), List.of(1)), NeuronDevices.groups(List.of(0, 1), 1));
        assertEquals(List.of(List.of(0, 1)), NeuronDevices.groups(List.of(0, 1), 2));
        assertEquals(List.of(List.of(0, 1)), NeuronDevices.groups(List.of(0, 1, 2), 2)); // core 2 unused
        assertEquals(List.of(List.of(1, 3)), NeuronDevices.groups(List.of(1, 3), 2));
        assertThrows(BackendException.class, () -> NeuronDevices.groups(List.of(0), 2));
        assertThrows(IllegalArgumentException.class, () -> NeuronDevices.groups(List.of(0), 0));
        assertEquals("0-1", NeuronDevices.visibleCoresValue(List.of(1, 0)));
        assertEquals("2", NeuronDevices.visibleCoresValue(List.of(2)));
        assertEquals("0,1,3", NeuronDevices.visibleCoresValue(List.of(0, 1, 3)));
        // the value round-trips through the parser
        assertEquals(List.of(0, 1, 3), List.copyOf(NeuronDevices.parseCoreList("0,1,3")));
    }
}
