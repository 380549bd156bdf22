package dev.sdjvm.server;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.TooLongFrameException;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.channel.ChannelFuture;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.util.ReferenceCountUtil;
import java.util.ArrayDeque;
import java.time.Duration;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One client connection (a Netty handler after the HTTP codec): collects a request's head and body within their
 * timeouts, hands the complete request to the {@link InferenceServer}, writes its one response, and tells the server
 * when the client goes away. Everything here runs on the connection's event loop except {@link Exchange#respond},
 * which may be called from any thread.
 *
 * <p>Phases: IDLE (no byte of a request yet; closed after the idle timeout), HEAD (bytes arrived, the head is not
 * complete; 408 after the header timeout), BODY (head read; 408 after the body timeout), PROCESSING (the server
 * has the request; no timeout here, the request's own deadline applies; then its response is written: closed if the
 * client does not take it within the write timeout).
 *
 * <p>Backpressure: one request at a time per connection. Requests pipelined behind one in PROCESSING are held (at
 * most {@link #MAX_HELD_MESSAGES} decoded messages and {@link #MAX_HELD_BYTES} body bytes; past that the rest is
 * dropped and the connection closes once the held ones are answered, which RFC 9112 9.3.2 lets a server do) and the
 * connection stops reading until they are answered, so a client that sends without reading costs at most one
 * unwritten response and what one socket read decoded to, never a growing buffer.
 *
 * <p>Half-close: a client that ends its sending side ({@code shutdown(SHUT_WR)}) after a complete request still
 * gets its answer, then the connection closes. A full close is seen when the connection is reset or a write fails,
 * and cancels the request's generation.
 */
final class HttpConnection extends ChannelInboundHandlerAdapter {
    private static final Logger LOG = LoggerFactory.getLogger(HttpConnection.class);

    enum Phase { IDLE, HEAD, BODY, PROCESSING, CLOSED }

    private final InferenceServer server;
    private final ServerConfig config;
    private final Connections connections;
    volatile Phase phase = Phase.IDLE;
    volatile long lastActivityNanos = System.nanoTime();
    Channel channel;
    private ScheduledFuture<?> timer;
    private HttpRequest head;
    private Body body;
    private boolean discarding;
    private volatile Exchange current;
    /** Pipelined messages held while a request is in PROCESSING (retained; released when processed or closed). */
    private final ArrayDeque<Object> held = new ArrayDeque<>();
    private long heldBytes;
    /** More was pipelined than is held: close once the held requests are answered. */
    private boolean overflow;
    /** The client ended its sending side (half-close): answer what is complete, then close. */
    private volatile boolean inputClosed;
    /** A complete request was handed to the server (in this drain / in this socket read). */
    private boolean dispatched;
    private boolean dispatchedThisRead;
    private boolean drainScheduled;
    /** A response is written but not yet taken by the client (the socket's send buffer is full). */
    volatile boolean writePending;
    volatile long writeStartNanos;
    private ScheduledFuture<?> writeTimer;
    /** Accepted beyond the connection cap into the reserve kept for /ping: serves one /ping, then closes. */
    volatile boolean reserved;

    /** Most decoded messages held for pipelined requests on one connection. */
    static final int MAX_HELD_MESSAGES = 64;
    /** Most body bytes held for pipelined requests on one connection. */
    static final long MAX_HELD_BYTES = 256 * 1024;

    HttpConnection(InferenceServer server, ServerConfig config, Connections connections) {
        this.server = server;
        this.config = config;
        this.connections = connections;
    }

    /** Placed before the HTTP codec: notes that bytes of a request arrived (IDLE to HEAD). */
    final class ByteWatcher extends ChannelInboundHandlerAdapter {
        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            lastActivityNanos = System.nanoTime();
            if (phase == Phase.IDLE && msg instanceof ByteBuf b && b.isReadable()) {
                enter(Phase.HEAD, config.headerTimeout());
            }
            ctx.fireChannelRead(msg);
        }
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
        channel = ctx.channel();
        enter(Phase.IDLE, config.idleTimeout());
        connections.opened(this);
        ctx.fireChannelActive();
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        phase = Phase.CLOSED;
        cancelTimer();
        cancelWriteTimer();
        releaseHeld();
        connections.closed(this);
        Exchange ex = current;
        if (ex != null) {
            ex.clientGone();
        }
        ctx.fireChannelInactive();
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (phase == Phase.PROCESSING && !discarding || !held.isEmpty() || dispatchedThisRead) {
            hold(msg);
            return;
        }
        process(ctx, msg);
    }

    /** A pipelined message while a request is in PROCESSING: kept (within the bounds) and reading stops. */
    private void hold(Object msg) {
        long size = msg instanceof HttpContent c ? c.content().readableBytes() : 0;
        if (overflow || discarding || held.size() >= MAX_HELD_MESSAGES || heldBytes + size > MAX_HELD_BYTES) {
            if (!overflow && !discarding) {
                LOG.debug("connection {}: more than {} pipelined messages or {} bytes: closing after the held ones",
                        channel.remoteAddress(), MAX_HELD_MESSAGES, MAX_HELD_BYTES);
            }
            overflow = true;
            ReferenceCountUtil.release(msg);
        } else {
            held.add(msg);
            heldBytes += size;
        }
        channel.config().setAutoRead(false);
        if (phase != Phase.PROCESSING) {
            scheduleDrain();  // nothing in progress whose answer would drain them
        }
    }

    private void releaseHeld() {
        Object m;
        while ((m = held.poll()) != null) {
            ReferenceCountUtil.release(m);
        }
        heldBytes = 0;
    }

    /**
     * Processes held messages up to the next complete request; reads from the socket again once none is held, or
     * closes when more had been pipelined than was held or the client has half-closed. One request per event-loop
     * task: a client pipelining requests that are answered at once (/ping) takes turns with the other connections
     * on its event loop instead of holding it for a whole socket read's worth of requests.
     */
    private void drainHeld() {
        dispatched = false;
        while (!held.isEmpty() && !dispatched && phase != Phase.PROCESSING && channel.isActive()) {
            Object m = held.poll();
            if (m instanceof HttpContent c) {
                heldBytes -= c.content().readableBytes();
            }
            process(channel.pipeline().context(this), m);
        }
        if (!channel.isActive()) {
            return;
        }
        if (!held.isEmpty() || phase == Phase.PROCESSING) {
            if (held.isEmpty() && !overflow) {
                channel.config().setAutoRead(true);  // reading while processing: a reset cancels the generation
            }
            return;  // the answer's afterResponse schedules the next drain
        }
        if (overflow || inputClosed) {
            channel.close();
            return;
        }
        channel.config().setAutoRead(true);
    }

    private void scheduleDrain() {
        if (!drainScheduled) {
            drainScheduled = true;
            channel.eventLoop().execute(() -> {
                drainScheduled = false;
                drainHeld();
            });
        }
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) {
        dispatchedThisRead = false;
        ctx.fireChannelReadComplete();
    }

    private void process(ChannelHandlerContext ctx, Object msg) {
        try {
            if (msg instanceof HttpRequest req) {
                onHead(ctx, req);
            }
            if (msg instanceof HttpContent c) {
                onContent(ctx, c);
            }
        } catch (Throwable t) {
            if (t instanceof VirtualMachineError vme) {
                server.fatal(vme, "reading a request");
            }
            // the request boundary on the event loop: nothing may escape to kill the connection silently
            Exchange ex = current;
            String id = ex != null ? ex.id : InferenceServer.newRequestId();
            LOG.error("request {}: unexpected error reading the request", id, t);
            if (ex != null) {
                ex.respondError(new HttpError(500, null, "internal error"), true);
            } else {
                ctx.close();
            }
        } finally {
            ReferenceCountUtil.release(msg);
        }
    }

    private void onHead(ChannelHandlerContext ctx, HttpRequest req) {
        if (discarding) {
            return;
        }
        Exchange ex = new Exchange(this, req);
        current = ex;
        if (req.decoderResult().isFailure()) {
            Throwable cause = req.decoderResult().cause();
            int status = cause instanceof TooLongFrameException ? 431 : 400;
            discarding = true;
            enter(Phase.PROCESSING, null);
            ex.respondError(new HttpError(status, null, status == 431 ? "request line or headers too large"
                    : "malformed HTTP request"), true);
            return;
        }
        head = req;
        body = null;
        enter(Phase.BODY, config.bodyTimeout());
        long declared = HttpUtil.getContentLength(req, -1L);
        if (declared > config.maxBodyBytes()) {
            discarding = true;
            enter(Phase.PROCESSING, null);
            ex.respondError(new HttpError(413, null, "body of " + declared + " bytes is over the limit of "
                    + config.maxBodyBytes() + " (server --max-body)"), true);
            return;
        }
        if (HttpUtil.is100ContinueExpected(req)) {
            ctx.writeAndFlush(new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.CONTINUE));
        }
    }

    private void onContent(ChannelHandlerContext ctx, HttpContent c) {
        if (discarding || head == null) {
            return;
        }
        if (c.decoderResult().isFailure()) {
            // e.g. a chunk size that is not hexadecimal: the body is broken, not complete
            Throwable cause = c.decoderResult().cause();
            discarding = true;
            enter(Phase.PROCESSING, null);
            boolean tooLong = cause instanceof TooLongFrameException;
            current.respondError(new HttpError(tooLong ? 413 : 400, null, tooLong ? "a chunk of the body is too large"
                    : HttpUtil.isTransferEncodingChunked(head) ? "malformed chunked body (a chunk size or delimiter "
                    + "is not valid HTTP/1.1 chunked encoding)" : "malformed request body"), true);
            head = null;
            body = null;
            return;
        }
        ByteBuf buf = c.content();
        if (buf.isReadable()) {
            if (body == null) {
                // grown straight to Content-Length (at most --max-body, checked in onHead) once more than the
                // first 64 KiB arrives: no doubling copies, and no large array for a head whose body never comes
                long declared = HttpUtil.getContentLength(head, -1L);
                body = new Body((int) Math.min(declared > 0 ? declared : buf.readableBytes(), 1 << 16),
                        declared > 0 ? (int) declared : -1);
            }
            if ((long) body.size() + buf.readableBytes() > config.maxBodyBytes()) {
                discarding = true;
                enter(Phase.PROCESSING, null);
                current.respondError(new HttpError(413, null, "body is over the limit of " + config.maxBodyBytes()
                        + " bytes (server --max-body)"), true);
                return;
            }
            body.append(buf);
        }
        if (c instanceof LastHttpContent) {
            enter(Phase.PROCESSING, null);
            byte[] bytes = body == null ? new byte[0] : body.bytes();
            HttpRequest req = head;
            head = null;
            body = null;
            dispatched = true;
            dispatchedThisRead = true;
            server.handle(current, req, bytes);
        }
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
        if (evt instanceof ChannelInputShutdownEvent) {
            onInputShutdown();
        }
        ctx.fireUserEventTriggered(evt);
    }

    /**
     * The client ended its sending side (a half-close, or a full close we cannot tell apart yet). A request being
     * processed is answered, then the connection closes; a request still being received can never complete: 400.
     */
    private void onInputShutdown() {
        inputClosed = true;
        switch (phase) {
            case IDLE:
                if (held.isEmpty()) {
                    channel.close();
                }
                break;
            case HEAD:
            case BODY: {
                Exchange ex = current != null && phase == Phase.BODY ? current : new Exchange(this, null);
                current = ex;
                discarding = true;
                enter(Phase.PROCESSING, null);
                ex.respondError(new HttpError(400, null, "the client closed its sending side before the request "
                        + "was complete"), true);
                break;
            }
            case PROCESSING:
                // the answer is written, then the connection closes (see Exchange#respond); meanwhile find out
                // whether the client is still there
                probe(current, 0);
                break;
            default:
                break;
        }
    }

    /**
     * After the client's FIN, while its request is processed: a full close and a half-close look the same until the
     * server sends something. An interim {@code 100 Continue} (which HTTP/1.1 clients must accept before the final
     * answer) does: a closed socket answers it with a reset, the next write fails, and the connection closes, which
     * cancels the generation. Sent at once, after 200 ms, then every 2 s until the answer (HTTP/1.1 requests only).
     */
    private void probe(Exchange ex, int n) {
        if (ex == null || ex != current || ex.isDone() || phase != Phase.PROCESSING || !channel.isActive()
                || ex.request == null || !ex.request.protocolVersion().equals(HttpVersion.HTTP_1_1) || writePending) {
            return;
        }
        channel.writeAndFlush(new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.CONTINUE))
                .addListener((ChannelFutureListener) f -> {
                    if (!f.isSuccess()) {
                        channel.close();  // the client is gone (reset): channelInactive cancels the request
                    }
                });
        channel.eventLoop().schedule(() -> probe(ex, n + 1), n == 0 ? 200 : 2000, TimeUnit.MILLISECONDS);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        if (cause instanceof VirtualMachineError vme) {
            server.fatal(vme, "the connection's pipeline");
        }
        LOG.debug("connection {}: {}", ctx.channel().remoteAddress(), cause.toString());
        ctx.close();
    }

    /** Moves to a phase and (re)arms its timeout (none for null). Event loop only. */
    private void enter(Phase p, Duration timeout) {
        cancelTimer();
        phase = p;
        lastActivityNanos = System.nanoTime();
        if (timeout != null && channel != null) {
            timer = channel.eventLoop().schedule(() -> onTimeout(p), timeout.toNanos(), TimeUnit.NANOSECONDS);
        }
    }

    private void cancelTimer() {
        if (timer != null) {
            timer.cancel(false);
            timer = null;
        }
    }

    private void onTimeout(Phase p) {
        if (phase != p) {
            return;
        }
        server.timedOut(p.name().toLowerCase(java.util.Locale.ROOT));
        if (p == Phase.IDLE) {
            channel.close();
            return;
        }
        Exchange ex = current != null && p == Phase.BODY ? current : new Exchange(this, null);
        current = ex;
        discarding = true;
        enter(Phase.PROCESSING, null);
        String what = p == Phase.HEAD ? "the request head was not complete within "
                + config.headerTimeout().toMillis() / 1000.0 + " s (server --header-timeout)"
                : "the request body was not complete within " + config.bodyTimeout().toMillis() / 1000.0
                + " s (server --body-timeout)";
        ex.respondError(new HttpError(408, null, what), true);
    }

    /** Called on the event loop once a response is written. */
    private void afterResponse(Exchange ex, boolean close) {
        writePending = false;
        cancelWriteTimer();
        if (close || !channel.isActive() || reserved) {
            channel.close();
            return;
        }
        if (current != ex) {
            return;  // the next request has started already
        }
        current = null;
        if (discarding) {
            channel.close();
            return;
        }
        enter(Phase.IDLE, config.idleTimeout());
        if (!held.isEmpty() || overflow || inputClosed) {
            scheduleDrain();
        } else if (!channel.config().isAutoRead()) {
            channel.config().setAutoRead(true);
        }
    }

    /** The response did not leave at once (the client does not read fast enough): close it if it never does. */
    private void writeStalled() {
        writePending = true;
        writeStartNanos = System.nanoTime();
        cancelWriteTimer();
        writeTimer = channel.eventLoop().schedule(() -> {
            if (writePending && channel.isActive()) {
                server.timedOut("write");
                LOG.info("connection {}: the client took no response for {} s: closing it", channel.remoteAddress(),
                        config.writeTimeout().toMillis() / 1000.0);
                channel.close();
            }
        }, config.writeTimeout().toNanos(), TimeUnit.NANOSECONDS);
    }

    private void cancelWriteTimer() {
        if (writeTimer != null) {
            writeTimer.cancel(false);
            writeTimer = null;
        }
    }

    /** A request body being received: grown once to Content-Length, or by doubling for a chunked body. */
    private static final class Body {
        private final int declared;
        private byte[] buf;
        private int size;

        Body(int capacity, int declared) {
            this.buf = new byte[Math.max(capacity, 1)];
            this.declared = declared;
        }

        int size() {
            return size;
        }

        void append(ByteBuf b) {
            int n = b.readableBytes();
            if (size + n > buf.length) {
                long target = declared >= size + n ? declared : Math.min(Integer.MAX_VALUE - 8, 2L * buf.length);
                buf = java.util.Arrays.copyOf(buf, (int) Math.max(size + n, target));
            }
            b.readBytes(buf, size, n);
            size += n;
        }

        /** The body; the array itself when it is full (the usual case with Content-Length). */
        byte[] bytes() {
            return size == buf.length ? buf : java.util.Arrays.copyOf(buf, size);
        }
    }

    /** Set once this connection is chosen to be closed for the connection cap. */
    final java.util.concurrent.atomic.AtomicBoolean evicting = new java.util.concurrent.atomic.AtomicBoolean();

    /**
     * True when the connection has no request in progress, is stuck reading one, or its client is not taking its
     * response (it may be evicted).
     */
    boolean evictable() {
        return !evicting.get() && evictableNow();
    }

    boolean evictableNow() {
        Phase p = phase;
        return p == Phase.IDLE || p == Phase.HEAD || p == Phase.BODY || writePending;
    }

    /**
     * One request on this connection and its single response. {@link #respond} may be called from any thread; only
     * the first call writes.
     */
    static final class Exchange {
        final String id;
        final HttpConnection conn;
        final HttpRequest request;
        final long startNanos = System.nanoTime();
        private final java.util.concurrent.atomic.AtomicBoolean done = new java.util.concurrent.atomic.AtomicBoolean();
        volatile boolean gone;
        volatile boolean closeAfter;
        volatile Runnable onClientGone;
        volatile String path = "other";

        Exchange(HttpConnection conn, HttpRequest request) {
            this.conn = conn;
            this.request = request;
            String uri = request == null ? "" : request.uri();
            int q = uri.indexOf('?');
            String p = q >= 0 ? uri.substring(0, q) : uri;
            if (p.equals("/ping") || p.equals("/invocations") || p.equals("/metrics")) {
                this.path = p;
            }
            String given = request == null ? null : request.headers().get("X-Request-Id");
            this.id = given != null && given.matches("[A-Za-z0-9._:-]{1,64}") ? given : InferenceServer.newRequestId();
        }

        String method() {
            return request == null ? "-" : request.method().name();
        }

        boolean isDone() {
            return done.get();
        }

        boolean keepAlive() {
            return request != null && HttpUtil.isKeepAlive(request) && !closeAfter && !conn.reserved;
        }

        void clientGone() {
            gone = true;
            if (done.compareAndSet(false, true)) {
                Runnable r = onClientGone;
                if (r != null) {
                    r.run();
                }
            }
        }

        void respondError(HttpError e, boolean close) {
            if (close) {
                closeAfter = true;
            }
            conn.server.sendError(this, e);
        }

        /** Writes the response (once); returns false if a response was already sent or the client is gone. */
        boolean respond(int status, String contentType, byte[] body, java.util.Map<String, String> headers) {
            if (!done.compareAndSet(false, true)) {
                return false;
            }
            FullHttpResponse r = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.valueOf(status),
                    Unpooled.wrappedBuffer(body));
            r.headers().set(HttpHeaderNames.CONTENT_TYPE, contentType);
            r.headers().set(HttpHeaderNames.CONTENT_LENGTH, body.length);
            if (headers != null) {
                headers.forEach((k, v) -> r.headers().set(k, v));
            }
            boolean head = request != null && "HEAD".equals(request.method().name());
            if (head) {
                r.content().clear();
            }
            Channel ch = conn.channel;
            // write from the event loop, so that the listener runs before the connection reads the next request
            Runnable write = () -> {
                // after a half-close: close once nothing pipelined is left to answer
                boolean keep = keepAlive() && !(conn.inputClosed && conn.held.isEmpty());
                if (keep) {
                    if (request.protocolVersion().equals(HttpVersion.HTTP_1_0)) {
                        r.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.KEEP_ALIVE);
                    }
                } else {
                    r.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
                }
                ChannelFuture f = ch.writeAndFlush(r);
                if (!f.isDone()) {
                    conn.writeStalled();
                }
                f.addListener((ChannelFutureListener) done -> conn.afterResponse(this, !keep || !done.isSuccess()));
            };
            if (ch.eventLoop().inEventLoop()) {
                write.run();
            } else {
                ch.eventLoop().execute(write);
            }
            return true;
        }
    }
}
