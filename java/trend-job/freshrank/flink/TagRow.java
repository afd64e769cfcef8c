package freshrank.flink;

/** One (post, hashtag) row in its slice (bucket {@code ceil(ms / S)}). */
public class TagRow {
    public long bucket;
    public String key;
    public String spelling;
    public String author;

    public TagRow() {}

    public TagRow(long bucket, String key, String spelling, String author) {
        this.bucket = bucket;
        this.key = key;
        this.spelling = spelling;
        this.author = author;
    }
}
