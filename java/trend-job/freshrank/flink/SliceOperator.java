package freshrank.flink;

import java.io.ByteArrayInputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.util.Map;
import java.util.TreeMap;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.runtime.state.StateInitializationContext;
import org.apache.flink.runtime.state.StateSnapshotContext;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.util.OutputTag;

/**
 * Posts to (slice, hashtag) rows, and per closed slice the hashtag uses and posts this subtask saw (a side
 * output, broadcast to every window subtask before the watermark that closes the slice). A post at or behind
 * the watermark is late: dropped here, so no later operator sees it.
 */
public class SliceOperator extends AbstractStreamOperator<TagRow> implements OneInputStreamOperator<Post, TagRow> {
    public static final OutputTag<VolumeRow> VOLUMES = new OutputTag<>("volumes") {};
    private final long slideMs;
    private transient TreeMap<Long, long[]> open; // bucket -> {uses, posts}
    private transient long watermark;
    private transient long late;
    private transient ListState<byte[]> saved;

    public SliceOperator(long slideMs) {
        this.slideMs = slideMs;
    }

    static long bucket(long ms, long slideMs) {
        return -Math.floorDiv(-ms, slideMs);
    }

    @Override
    public void initializeState(StateInitializationContext context) throws Exception {
        super.initializeState(context);
        open = new TreeMap<>();
        watermark = Long.MIN_VALUE;
        saved = context.getOperatorStateStore()
                .getListState(new ListStateDescriptor<>("slices", PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO));
        for (byte[] blob : saved.get()) {
            restore(blob);
        }
    }

    private void restore(byte[] blob) throws IOException {
        DataInputStream in = new DataInputStream(new ByteArrayInputStream(blob));
        watermark = Math.max(watermark, in.readLong());
        Blobs.readCounts(in, open);
    }

    @Override
    public void snapshotState(StateSnapshotContext context) throws Exception {
        super.snapshotState(context);
        Blobs.save(saved, out -> {
            out.writeLong(watermark);
            Blobs.writeCounts(out, open);
        });
    }

    @Override
    public void processElement(StreamRecord<Post> record) {
        Post post = record.getValue();
        if (post.ms <= watermark) {
            if (++late <= 20) {
                LOG.warn("dropping a post {} ms behind the watermark", watermark - post.ms);
            }
            return;
        }
        long b = bucket(post.ms, slideMs);
        long[] counts = open.computeIfAbsent(b, k -> new long[2]);
        counts[0] += post.keys.length;
        counts[1] += 1;
        for (int i = 0; i < post.keys.length; i++) {
            output.collect(record.replace(new TagRow(b, post.keys[i], post.spellings[i], post.author)));
        }
    }

    @Override
    public void processWatermark(Watermark mark) throws Exception {
        watermark = Math.max(watermark, mark.getTimestamp());
        while (!open.isEmpty() && (watermark == Long.MAX_VALUE || open.firstKey() * slideMs <= watermark)) {
            Map.Entry<Long, long[]> first = open.pollFirstEntry();
            long[] c = first.getValue();
            output.collect(VOLUMES, new StreamRecord<>(new VolumeRow(first.getKey(), c[0], c[1])));
        }
        super.processWatermark(mark);
    }
}
