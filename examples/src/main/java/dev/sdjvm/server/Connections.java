package dev.sdjvm.server;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The open connections and their cap. A connection beyond {@code max} makes room by closing the connection that
 * has been idle the longest, else the one whose client has not taken its response for the longest (it sends but
 * does not read), else the one stuck sending a request the longest: a flood of idle, slow or non-reading clients
 * then costs its own connections, never the health check's. When every connection has a request being processed,
 * the new one is accepted into a small reserve ({@link #RESERVE} connections) that serves only {@code /ping}, one
 * request per connection; beyond the reserve the new one is closed.
 */
final class Connections {
    private static final Logger LOG = LoggerFactory.getLogger(Connections.class);
    /** Connections beyond the cap kept for /ping when no connection can be evicted. */
    static final int RESERVE = 4;
    private final int max;
    private final Set<HttpConnection> open = ConcurrentHashMap.newKeySet();
    private final AtomicInteger count = new AtomicInteger();
    final LongAdder evicted = new LongAdder();
    final LongAdder refused = new LongAdder();

    Connections(int max) {
        this.max = max;
    }

    int count() {
        return count.get();
    }

    void opened(HttpConnection c) {
        open.add(c);
        if (count.incrementAndGet() <= max) {
            return;
        }
        HttpConnection victim = null;
        for (int attempt = 0; attempt < 4 && victim == null; attempt++) {
            for (HttpConnection o : open) {
                if (o == c || !o.evictable()) {
                    continue;
                }
                // idle ones first, then the oldest activity
                if (victim == null || rank(o) < rank(victim)
                        || rank(o) == rank(victim) && since(o) < since(victim)) {
                    victim = o;
                }
            }
            if (victim != null && !victim.evicting.compareAndSet(false, true)) {
                victim = null;  // another new connection took it: look again
            }
        }
        if (victim == null && count.get() <= max + RESERVE) {
            c.reserved = true;  // a /ping can still get through; anything else is turned away on it
            LOG.debug("{} connections open, none to evict: {} accepted for /ping only", count.get(),
                    c.channel.remoteAddress());
            return;
        }
        if (victim == null) {
            refused.increment();
            LOG.warn("{} connections open, none idle: closing the new one from {}", count.get(),
                    c.channel.remoteAddress());
            c.channel.close();
            return;
        }
        evicted.increment();
        HttpConnection v = victim;
        LOG.debug("{} connections open: closing the one idle the longest ({}, {})", count.get(),
                v.channel.remoteAddress(), v.phase);
        v.channel.eventLoop().execute(() -> {
            if (v.evictableNow()) {
                v.channel.close();
            } else {
                v.evicting.set(false);  // a request arrived meanwhile: keep it
            }
        });
    }

    /** Idle first, then not reading its response, then stuck sending a request. */
    private static int rank(HttpConnection c) {
        return c.phase == HttpConnection.Phase.IDLE ? 0 : c.writePending ? 1 : 2;
    }

    private static long since(HttpConnection c) {
        return c.writePending ? c.writeStartNanos : c.lastActivityNanos;
    }

    void closed(HttpConnection c) {
        if (open.remove(c)) {
            count.decrementAndGet();
        }
    }

    void closeAll() {
        for (HttpConnection c : open) {
            if (c.channel != null) {
                c.channel.close();
            }
        }
    }
}
