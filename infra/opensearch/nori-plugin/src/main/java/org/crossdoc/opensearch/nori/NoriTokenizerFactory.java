/*
 * Copyright Crossdoc contributors. Licensed under the Apache License, Version 2.0.
 */
package org.crossdoc.opensearch.nori;

import org.apache.lucene.analysis.Tokenizer;
import org.apache.lucene.analysis.ko.KoreanTokenizer;
import org.apache.lucene.analysis.ko.dict.UserDictionary;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.index.IndexSettings;
import org.opensearch.index.analysis.AbstractTokenizerFactory;

/** `nori_tokenizer`: Lucene's KoreanTokenizer with decompound_mode, user dictionary, punctuation. */
public final class NoriTokenizerFactory extends AbstractTokenizerFactory {
    private final UserDictionary userDictionary;
    private final KoreanTokenizer.DecompoundMode decompoundMode;
    private final boolean discardPunctuation;

    public NoriTokenizerFactory(IndexSettings indexSettings, Environment env, String name, Settings settings) {
        super(indexSettings, settings, name);
        this.decompoundMode = NoriSettings.decompoundMode(settings);
        this.userDictionary = NoriSettings.userDictionary(env, settings);
        this.discardPunctuation = NoriSettings.discardPunctuation(settings);
    }

    @Override
    public Tokenizer create() {
        // outputUnknownUnigrams=false, as in the official plugin.
        return new KoreanTokenizer(
                KoreanTokenizer.DEFAULT_TOKEN_ATTRIBUTE_FACTORY,
                userDictionary,
                decompoundMode,
                false,
                discardPunctuation);
    }
}
