package freshrank.flink;

/** One post with a readable time: its epoch ms, author (or null) and hashtags as (key, spelling) pairs. */
public class Post {
    public long ms;
    public String author;
    public String[] keys;
    public String[] spellings;

    public Post() {}

    public Post(long ms, String author, String[] keys, String[] spellings) {
        this.ms = ms;
        this.author = author;
        this.keys = keys;
        this.spellings = spellings;
    }
}
