package freshrank.flink;

/** What one source subtask saw in a closed slice: hashtag uses (the volume) and posts. */
public class VolumeRow {
    public long bucket;
    public long uses;
    public long posts;

    public VolumeRow() {}

    public VolumeRow(long bucket, long uses, long posts) {
        this.bucket = bucket;
        this.uses = uses;
        this.posts = posts;
    }
}
