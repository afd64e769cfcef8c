package freshrank.flink;

import java.io.ByteArrayInputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.runtime.state.StateInitializationContext;
import org.apache.flink.runtime.state.StateSnapshotContext;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.TwoInputStreamOperator;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;

/**
 * The sliding windows of the tags of one partition (tags are hash-partitioned by key), the embedded engine's
 * way: per tag, its slices; at each tick the slices crossing a window boundary update running {@code c},
 * {@code p} and authored posts, the volume slices (broadcast, all partitions) update {@code V} and {@code Vp},
 * and only the tags with {@code c >= min_count} are tested (burst score first, distinct authors only for the
 * survivors). A tick {@code k} fires when the watermark reaches {@code k·S}; this subtask's top N of the tick
 * goes downstream, and subtask 0 adds a mark (posts of the slice, latest slice) so that every tick is reported.
 * Bounded input (final watermark): ticks fire up to the latest slice with posts, the engine's {@code finish()}.
 */
public class TagWindows extends AbstractStreamOperator<Ranked>
        implements TwoInputStreamOperator<TagRow, VolumeRow, Ranked> {
    private static final long NONE = Long.MIN_VALUE;
    private final long slideMs;
    private final int n;
    private final int topN;
    private final long minCount;
    private final long minAuthors;
    private final Score score;

    /** One slice of one tag. */
    static final class Slice {
        int cnt;
        int authored;
        String spelling; // the first spelling and its uses; others (rare) in more
        int uses;
        HashMap<String, Integer> more;
        ArrayList<String> authors;

        void add(String spelling, int count) {
            if (this.spelling == null || this.spelling.equals(spelling)) {
                this.spelling = spelling;
                uses += count;
            } else {
                if (more == null) {
                    more = new HashMap<>();
                }
                more.merge(spelling, count, Integer::sum);
            }
        }
    }

    /** A tag's slices and running sums at the fired tick. */
    static final class Tag {
        final String key;
        long c;
        long p;
        long authored;
        final HashMap<Long, Slice> slices = new HashMap<>();

        Tag(String key) {
            this.key = key;
        }
    }

    private transient HashMap<String, Tag> tags;
    private transient HashMap<Long, ArrayList<Tag>> byBucket;
    private transient HashSet<Tag> candidates;
    private transient HashMap<Long, long[]> volumes; // bucket -> {uses, posts}, summed over source subtasks
    private transient long volume;
    private transient long prevVolume;
    private transient long fired;
    private transient long lastBucket;
    private transient ListState<byte[]> saved;

    public TagWindows(long slideMs, int n, int topN, long minCount, long minAuthors, Score score) {
        this.slideMs = slideMs;
        this.n = n;
        this.topN = topN;
        this.minCount = Math.max(minCount, 1);
        this.minAuthors = minAuthors;
        this.score = score;
    }

    @Override
    public void initializeState(StateInitializationContext context) throws Exception {
        super.initializeState(context);
        tags = new HashMap<>();
        byBucket = new HashMap<>();
        candidates = new HashSet<>();
        volumes = new HashMap<>();
        fired = NONE;
        lastBucket = NONE;
        saved = context.getOperatorStateStore()
                .getUnionListState(new ListStateDescriptor<>("windows", PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO));
        boolean first = true;
        for (byte[] blob : saved.get()) {
            restore(blob, first);
            first = false;
        }
    }

    @Override
    public void processElement1(StreamRecord<TagRow> record) {
        TagRow row = record.getValue();
        Tag tag = tags.computeIfAbsent(row.key, Tag::new);
        Slice slice = tag.slices.get(row.bucket);
        if (slice == null) {
            slice = new Slice();
            tag.slices.put(row.bucket, slice);
            byBucket.computeIfAbsent(row.bucket, b -> new ArrayList<>()).add(tag);
        }
        slice.cnt++;
        slice.add(row.spelling, 1);
        if (row.author != null) {
            slice.authored++;
            if (slice.authors == null) {
                slice.authors = new ArrayList<>(2);
            }
            slice.authors.add(row.author);
        }
    }

    @Override
    public void processElement2(StreamRecord<VolumeRow> record) {
        VolumeRow row = record.getValue();
        long[] counts = volumes.computeIfAbsent(row.bucket, b -> new long[2]);
        counts[0] += row.uses;
        counts[1] += row.posts;
        lastBucket = Math.max(lastBucket, row.bucket);
        if (fired == NONE || row.bucket <= fired) {
            fired = fired == NONE ? row.bucket - 1 : Math.min(fired, row.bucket - 1);
        }
    }

    @Override
    public void processWatermark(Watermark mark) throws Exception {
        if (fired != NONE) {
            long target = mark.getTimestamp() == Long.MAX_VALUE ? lastBucket : Math.floorDiv(mark.getTimestamp(), slideMs);
            while (fired < target) {
                fire(fired + 1);
            }
        }
        super.processWatermark(mark);
    }

    private void fire(long k) {
        for (Tag tag : byBucket.getOrDefault(k, EMPTY)) {
            Slice s = tag.slices.get(k);
            tag.c += s.cnt;
            tag.authored += s.authored;
            check(tag);
        }
        for (Tag tag : byBucket.getOrDefault(k - n, EMPTY)) {
            Slice s = tag.slices.get(k - n);
            tag.c -= s.cnt;
            tag.p += s.cnt;
            tag.authored -= s.authored;
            check(tag);
        }
        ArrayList<Tag> leaving = byBucket.remove(k - 2L * n);
        if (leaving != null) {
            for (Tag tag : leaving) {
                tag.p -= tag.slices.remove(k - 2L * n).cnt;
                if (tag.slices.isEmpty()) {
                    tags.remove(tag.key);
                }
            }
        }
        volume += uses(k) - uses(k - n);
        prevVolume += uses(k - n) - uses(k - 2L * n);
        volumes.remove(k - 2L * n);
        fired = k;
        rank(k);
        if (getRuntimeContext().getTaskInfo().getIndexOfThisSubtask() == 0) {
            long[] here = volumes.get(k);
            output.collect(new StreamRecord<>(Ranked.mark(k, here == null ? 0 : here[1], lastBucket)));
        }
    }

    private static final ArrayList<Tag> EMPTY = new ArrayList<>();

    private long uses(long bucket) {
        long[] counts = volumes.get(bucket);
        return counts == null ? 0 : counts[0];
    }

    private void check(Tag tag) {
        if (tag.c >= minCount) {
            candidates.add(tag);
        } else {
            candidates.remove(tag);
        }
    }

    /** This partition's top N at tick k (the engine's test: z of the count first, then authors). */
    private void rank(long k) {
        ArrayList<Ranked> passed = new ArrayList<>();
        for (Tag tag : candidates) {
            double lam = score.expected(tag.p, volume, prevVolume);
            if (Score.z(tag.c, lam) < score.minZ) {
                continue;
            }
            long authors = -1;
            if (tag.authored > 0) {
                authors = distinctAuthors(tag, k);
                if (authors < minAuthors) {
                    continue;
                }
            }
            long x = score.evidence(tag.c, authors);
            double z = Score.z(x, lam);
            if (z >= score.minZ) {
                Ranked r = new Ranked();
                r.tick = k;
                r.key = tag.key;
                r.c = tag.c;
                r.p = tag.p;
                r.authors = Math.max(authors, 0);
                r.authored = tag.authored;
                r.x = x;
                r.lam = lam;
                r.z = z;
                passed.add(r);
            }
        }
        passed.sort(Ranked::order);
        for (Ranked r : passed.subList(0, Math.min(topN, passed.size()))) {
            r.spelling = display(tags.get(r.key), k);
            output.collect(new StreamRecord<>(r));
        }
    }

    private long distinctAuthors(Tag tag, long k) {
        HashSet<String> seen = new HashSet<>();
        for (Map.Entry<Long, Slice> e : tag.slices.entrySet()) {
            long b = e.getKey();
            if (b > k - n && b <= k && e.getValue().authors != null) {
                seen.addAll(e.getValue().authors);
            }
        }
        return seen.size();
    }

    /** The most common spelling over the two windows (ties: the first in code-point order). */
    private static String display(Tag tag, long k) {
        HashMap<String, Long> totals = new HashMap<>();
        for (Map.Entry<Long, Slice> e : tag.slices.entrySet()) {
            if (e.getKey() <= k) {
                Slice s = e.getValue();
                totals.merge(s.spelling, (long) s.uses, Long::sum);
                if (s.more != null) {
                    s.more.forEach((spelling, uses) -> totals.merge(spelling, (long) uses, Long::sum));
                }
            }
        }
        String best = null;
        long most = -1;
        for (Map.Entry<String, Long> e : totals.entrySet()) {
            long uses = e.getValue();
            if (uses > most || (uses == most && Ranked.codePoints(e.getKey(), best) < 0)) {
                best = e.getKey();
                most = uses;
            }
        }
        return best;
    }

    // Checkpoints: one blob per subtask, all blobs to every subtask on restore (a union list), each keeping the
    // tags of its partition; the volumes are the same in every blob (every subtask saw every volume row).

    @Override
    public void snapshotState(StateSnapshotContext context) throws Exception {
        super.snapshotState(context);
        Blobs.save(saved, out -> {
            out.writeLong(fired);
            out.writeLong(lastBucket);
            out.writeLong(volume);
            out.writeLong(prevVolume);
            Blobs.writeCounts(out, volumes);
            out.writeInt(tags.size());
            for (Tag tag : tags.values()) {
                writeTag(out, tag);
            }
        });
    }

    private static void writeTag(DataOutputStream out, Tag tag) throws IOException {
        Blobs.writeString(out, tag.key);
        out.writeLong(tag.c);
        out.writeLong(tag.p);
        out.writeLong(tag.authored);
        out.writeInt(tag.slices.size());
        for (Map.Entry<Long, Slice> e : tag.slices.entrySet()) {
            Slice s = e.getValue();
            out.writeLong(e.getKey());
            out.writeInt(s.cnt);
            out.writeInt(s.authored);
            HashMap<String, Integer> spellings = new HashMap<>();
            spellings.put(s.spelling, s.uses);
            if (s.more != null) {
                spellings.putAll(s.more);
            }
            out.writeInt(spellings.size());
            for (Map.Entry<String, Integer> sp : spellings.entrySet()) {
                Blobs.writeString(out, sp.getKey());
                out.writeInt(sp.getValue());
            }
            List<String> authors = s.authors == null ? List.of() : s.authors;
            out.writeInt(authors.size());
            for (String author : authors) {
                Blobs.writeString(out, author);
            }
        }
    }

    private void restore(byte[] blob, boolean withVolumes) throws IOException {
        DataInputStream in = new DataInputStream(new ByteArrayInputStream(blob));
        long blobFired = in.readLong(), blobLast = in.readLong(), blobVolume = in.readLong(), blobPrev = in.readLong();
        Blobs.readCounts(in, withVolumes ? volumes : new HashMap<>());
        if (withVolumes) {
            fired = blobFired;
            lastBucket = blobLast;
            volume = blobVolume;
            prevVolume = blobPrev;
        }
        int parallelism = getRuntimeContext().getTaskInfo().getNumberOfParallelSubtasks();
        int index = getRuntimeContext().getTaskInfo().getIndexOfThisSubtask();
        for (int t = in.readInt(); t > 0; t--) {
            Tag tag = readTag(in);
            if (TrendJob.partition(tag.key, parallelism) == index) {
                tags.put(tag.key, tag);
                for (Long bucket : tag.slices.keySet()) {
                    byBucket.computeIfAbsent(bucket, b -> new ArrayList<>()).add(tag);
                }
                check(tag);
            }
        }
    }

    private static Tag readTag(DataInputStream in) throws IOException {
        Tag tag = new Tag(Blobs.readString(in));
        tag.c = in.readLong();
        tag.p = in.readLong();
        tag.authored = in.readLong();
        for (int s = in.readInt(); s > 0; s--) {
            long bucket = in.readLong();
            Slice slice = new Slice();
            slice.cnt = in.readInt();
            slice.authored = in.readInt();
            for (int sp = in.readInt(); sp > 0; sp--) {
                slice.add(Blobs.readString(in), in.readInt());
            }
            int authors = in.readInt();
            if (authors > 0) {
                slice.authors = new ArrayList<>(authors);
                for (int a = 0; a < authors; a++) {
                    slice.authors.add(Blobs.readString(in));
                }
            }
            tag.slices.put(bucket, slice);
        }
        return tag;
    }
}
