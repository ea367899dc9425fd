/*
 * Copyright Crossdoc contributors. Licensed under the Apache License, Version 2.0.
 */
package org.crossdoc.opensearch.nori;

import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.ko.KoreanNumberFilter;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.index.IndexSettings;
import org.opensearch.index.analysis.AbstractTokenFilterFactory;

/** `nori_number`: normalises Korean numerals to Arabic digits (삼천이백 → 3200). */
public final class NoriNumberFilterFactory extends AbstractTokenFilterFactory {
    public NoriNumberFilterFactory(IndexSettings indexSettings, Environment env, String name, Settings settings) {
        super(indexSettings, name, settings);
    }

    @Override
    public TokenStream create(TokenStream tokenStream) {
        return new KoreanNumberFilter(tokenStream);
    }
}
